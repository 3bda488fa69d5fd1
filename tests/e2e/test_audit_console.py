"""The audit console in a real browser.

An admin signs in with password and authenticator code, filters the log to one
facilitator's views of intake answers (among other people's noise), reads them in plain
language, exports them, and the downloaded file verifies offline with
audit/verify_export.py and holds exactly those rows. A member, and an admin whose session
never passed the code step, are refused.
"""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django_otp.oath import TOTP
from playwright.sync_api import expect

from accounts.models import TOTPDevice, User
from audit.events import Action
from audit.models import Event
from audit.services import record_event
from groups import services as group_services
from groups.models import Topic
from moderation import services as moderation_services
from screening import services as screening_services
from screening.models import QuestionKind

REPO_ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "lantern harbour quietly 42"
LANTERN_IP = "203.0.113.7"


# --- the world, built through the services ----------------------------------------------------


def person(handle, **fields):
    return User.objects.create_user(username=handle, password=PASSWORD, **fields)


def take_place(membership, pseudonym):
    return group_services.membership_take_place(
        actor=membership.user,
        group=membership.group,
        pseudonym=pseudonym,
        typed_name=pseudonym,
        guidelines_acknowledged=True,
    )


def apply(group, applicant):
    application = screening_services.application_start(group=group, applicant=applicant)
    answers = {}
    for question in application.questionnaire.questions.all():
        if question.kind == QuestionKind.YES_NO:
            answers[str(question.pk)] = "yes"
        elif question.kind == QuestionKind.SINGLE_CHOICE:
            answers[str(question.pk)] = question.choices[0]
        elif question.kind == QuestionKind.MULTIPLE_CHOICE:
            answers[str(question.pk)] = question.choices[:1]
        else:
            answers[str(question.pk)] = "My mother died in January."
    return screening_services.application_save(
        application=application, answers=answers, submit=True
    )


def build():
    admin = person("site-keeper", is_staff=True)
    admin_device = TOTPDevice.objects.create(user=admin, name="Phone", confirmed=True)
    group = group_services.group_create(
        actor=admin,
        name="Evening Grief Circle",
        topic=Topic.GRIEF,
        description="A gentle weekly space.",
        eligibility="Adults who have lost someone close.",
        meeting_rhythm="Tuesdays, 7-8:30 pm",
        listed=True,
        requires_screening=True,
        crisis_resources="Call your local emergency number.",
        guidelines=["What is shared here stays here."],
        agreement_text="I keep what is said here confidential.",
        agreement_summary="Members keep what is shared confidential.",
    )
    lantern = take_place(
        group_services.facilitator_appoint(group=group, actor=admin, user=person("fac-lantern")),
        "Lantern",
    )
    beacon = take_place(
        group_services.facilitator_appoint(group=group, actor=admin, user=person("fac-beacon")),
        "Beacon",
    )
    member = take_place(
        group_services.membership_create(
            group=group,
            user=person("river-handle", phone="+44 7700 900123"),
            actor=None,
            reason="test",
        ),
        "River",
    )
    applications = [apply(group, person(handle)) for handle in ("heron", "wren", "moss")]

    # Lantern opens three applications' answers (one of them twice)...
    looks = []
    for application in (*applications, applications[0]):
        screening_services.application_record_view(
            application=application, actor=lantern.user, ip=LANTERN_IP
        )
        looks.append(Event.objects.order_by("-seq").first())
    # ...and among it all, other people do other things, some of the same kind.
    screening_services.application_record_view(
        application=applications[1], actor=beacon.user, ip="198.51.100.4"
    )
    screening_services.note_add(
        application=applications[2], actor=lantern.user, body="Seems a good fit."
    )
    moderation_services.contact_reveal(
        membership=member,
        actor=beacon.user,
        reason="They told us they were unsafe tonight; a duty to warn.",
    )
    for _ in range(3):
        record_event(action=Action.LOGIN_FAILED, ip="192.0.2.66", extra={"known_account": False})
    return admin, admin_device, member, applications, looks


# --- signing in -------------------------------------------------------------------------------


def totp_code(device):
    device = TOTPDevice.objects.get(pk=device.pk)
    step = int(time.time()) // TOTPDevice.STEP
    if device.last_t >= step - 1:  # a code is accepted once per 30 s step
        TOTPDevice.objects.filter(pk=device.pk).update(last_t=step - 2)
    return f"{TOTP(bytes.fromhex(device.key)).token():06d}"


def url_is(live_server_url, path):
    return re.compile(re.escape(live_server_url + path) + r"(\?.*)?$")


def enter_password(page, live_server_url, handle):
    page.goto(live_server_url + "/accounts/login/")
    page.locator("input[name=login]").fill(handle)
    page.locator("input[name=password]").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def sign_in_with_second_factor(page, live_server_url, handle, device):
    enter_password(page, live_server_url, handle)
    expect(page).to_have_url(url_is(live_server_url, "/accounts/login/two-factor/"))
    page.locator("input[name=code]").fill(totp_code(device))
    page.get_by_role("button", name="Continue").click()
    expect(page).to_have_url(url_is(live_server_url, "/groups/mine/"))


def session_without_second_factor(context, live_server_url, user):
    """A signed-in session that never passed the code step (made by force_login)."""
    client = Client()
    client.force_login(user)
    context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live_server_url,
                "httpOnly": True,
                "sameSite": "Lax",
            }
        ]
    )


def verify_offline(path):
    """The documented recipe: standard library only, AUDIT_KEY in the environment."""
    return subprocess.run(
        [sys.executable, "-I", "-S", str(REPO_ROOT / "audit" / "verify_export.py"), str(path)],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "AUDIT_KEY": settings.AUDIT_KEY},
        capture_output=True,
        text=True,
        timeout=60,
    )


# --- the journey ------------------------------------------------------------------------------


def test_an_admin_filters_one_facilitators_intake_answer_views_and_exports_them(
    page, live_server_url, tmp_path
):
    admin, device, _, applications, looks = build()
    group_name = "Evening Grief Circle"

    sign_in_with_second_factor(page, live_server_url, admin.username, device)
    page.goto(live_server_url + "/audit/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Audit log")
    rows = page.locator("table.audit-table tbody tr")
    # Everyone's events, newest first.
    expect(rows.first).to_contain_text("site-keeper signed in")
    expect(page.get_by_text("fac-beacon revealed the emergency contact details")).to_be_visible()

    page.get_by_label("Done by (login handle)").fill("fac-lantern")
    page.get_by_label("Action").select_option(label="Application answers viewed")
    page.get_by_role("button", name="Filter").click()

    expect(page).to_have_url(re.compile(r"/audit/\?.*actor=fac-lantern"))
    expect(rows).to_have_count(4)
    heron, wren, moss = (a.pk for a in applications)
    expected = [
        f"fac-lantern opened the intake answers of application {pk} in {group_name}"
        for pk in (heron, moss, wren, heron)
    ]
    for row, text, event in zip(rows.all(), expected, reversed(looks), strict=True):
        expect(row).to_contain_text(text)
        expect(row.locator("td").first).to_have_text(str(event.seq))
        expect(row).to_contain_text(LANTERN_IP)
    expect(page.get_by_text("fac-beacon")).to_have_count(0)
    expect(page.get_by_text("added a note")).to_have_count(0)

    with page.expect_download() as download_info:
        page.get_by_role("link", name="JSON Lines").click()
    download = download_info.value
    assert download.suggested_filename == "audit-log.jsonl"
    exported = tmp_path / "audit-log.jsonl"
    download.save_as(exported)

    result = verify_offline(exported)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "4 rows verified."
    lines = [json.loads(line) for line in exported.read_text().splitlines() if line.strip()]
    assert [row["seq"] for row in lines] == [event.seq for event in looks]
    assert [row["hash"] for row in lines] == [event.hash for event in looks]
    assert {row["actor"] for row in lines} == {looks[0].actor_id}
    assert {row["action"] for row in lines} == {int(Action.APPLICATION_ANSWERS_VIEWED)}

    # Looking and exporting were themselves recorded, with the filters used.
    viewed = Event.objects.filter(action=Action.AUDIT_LOG_VIEWED, actor_id=admin.pk)
    assert [e.extra for e in viewed.order_by("seq")] == [
        {"page": "events", "filters": []},
        {"page": "events", "filters": ["actions", "actor_id"]},
    ]
    (export_event,) = Event.objects.filter(action=Action.AUDIT_LOG_EXPORTED)
    assert (export_event.actor_id, export_event.extra) == (
        admin.pk,
        {"filters": ["actions", "actor_id"], "rows": 4, "format": "jsonl"},
    )

    # The console lists its own use.
    page.goto(live_server_url + "/audit/")
    expect(rows.first).to_contain_text("site-keeper exported the audit log")


def test_a_member_and_an_admin_without_a_verified_session_are_refused(
    page, context, browsers_for_refusal, live_server_url
):
    admin, device, member, _, _ = build()

    # A member: the console does not exist for them.
    session_without_second_factor(context, live_server_url, member.user)
    response = page.goto(live_server_url + "/audit/")
    assert response.status == 404
    expect(page.locator("table.audit-table")).to_have_count(0)
    assert page.goto(live_server_url + "/audit/export/?format=jsonl").status == 404

    # An admin who typed the password but not the code: not signed in yet, so sent to sign
    # in (like every private page), which takes them back to the code step.
    halfway = browsers_for_refusal()
    enter_password(halfway, live_server_url, admin.username)
    expect(halfway).to_have_url(url_is(live_server_url, "/accounts/login/two-factor/"))
    halfway.goto(live_server_url + "/audit/")
    expect(halfway).to_have_url(url_is(live_server_url, "/accounts/login/two-factor/"))
    expect(halfway.locator("table.audit-table")).to_have_count(0)

    # An admin session that skipped the code step is ended and sent back to sign in.
    skipped = browsers_for_refusal()
    session_without_second_factor(skipped.context, live_server_url, admin)
    skipped.goto(live_server_url + "/audit/")
    expect(skipped).to_have_url(url_is(live_server_url, "/accounts/login/"))
    expect(skipped.get_by_text("Please sign in again with your authenticator app.")).to_be_visible()
    expect(skipped.locator("table.audit-table")).to_have_count(0)

    assert not Event.objects.filter(
        action__in=[Action.AUDIT_LOG_VIEWED, Action.AUDIT_LOG_EXPORTED]
    ).exists()


@pytest.fixture
def browsers_for_refusal(browser, live_server_url):
    """More people's browsers, each with its own cookies."""
    contexts = []

    def open_page():
        context = browser.new_context(base_url=live_server_url)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()
