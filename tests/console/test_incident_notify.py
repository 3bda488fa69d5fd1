"""An incident's notice to the people affected: in the app on every page until read, and by
confirmed recovery email; in the app's own words, which never name a group."""

import re

import pytest

from audit.events import Action
from console import services
from console.models import SecurityNotice
from tests.console.conftest import client_of, events, open_incident, text_of
from tests.factories import give_place, make_person
from tests.refusing_mail import BACKEND, REFUSED_MARK

pytestmark = pytest.mark.django_db


def notice_of(response) -> str:
    """The text of the notice shown at the top of the page (the page itself names the
    person's groups, as it should)."""
    found = re.search(
        r'<section class="card security-notice".*?</section>', response.content.decode(), re.S
    )
    assert found, "no security notice on the page"
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(0))).strip()


def words_naming_groups(world) -> list[str]:
    return [
        world.group.name,
        world.group.slug,
        world.other_group.name,
        world.other_group.slug,
        "Grief",
        "Circle",
    ]


def test_affected_people_are_told_in_the_app_and_by_confirmed_email_without_a_group_named(
    world, incident, admin_client, mailoutbox, django_capture_on_commit_callbacks
):
    unconfirmed = make_person("quiet-member", email="quiet@example.org", email_verified=False)
    give_place(world.group, unconfirmed, "Quiet")
    services.incident_sign_out(actor=world.admin, incident=incident, everyone=False, ip=None)
    url = f"/audit/incidents/{incident.pk}/notify/"
    preview = text_of(admin_client.get(url))
    assert "We signed people out on every device" in preview

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url, {"confirm": "on"})

    assert response["Location"] == f"/audit/incidents/{incident.pk}/"
    told = set(SecurityNotice.objects.values_list("user__username", flat=True))
    # Lantern (named, and the group's facilitator), the group's members; not Beacon's group,
    # not the applicants.
    assert told == {"fac-lantern", "river-handle", "quiet-member"}
    assert [mail.to for mail in mailoutbox] == [["lantern.private@example.org"]]
    [mail] = mailoutbox
    assert "security notice" in mail.subject
    assert "We signed people out on every device" in mail.body
    [step] = events(Action.INCIDENT_MEMBERS_NOTIFIED)
    assert (step.target_id, step.extra) == (str(incident.pk), {"people": 3, "emails_queued": 1})
    sent = events(Action.SECURITY_NOTICE_SENT)
    assert {e.subject_id for e in sent} == {
        world.lantern.user.pk,
        world.river.user.pk,
        unconfirmed.pk,
    }

    river = client_of(world.river.user, verified=False)
    page = river.get("/groups/mine/")
    banner = notice_of(page)
    assert "A security notice" in banner
    assert "We signed people out on every device" in banner
    for text in (mail.subject, mail.body, banner):
        for word in words_naming_groups(world):
            assert word not in text, word
    # Other people see no notice.
    assert "A security notice" not in text_of(
        client_of(world.heron, verified=False).get("/groups/mine/")
    )

    notice = SecurityNotice.objects.get(user=world.river.user)
    response = river.post(f"/notices/{notice.pk}/read/", {"next": "/groups/mine/"})
    assert response["Location"] == "/groups/mine/"
    assert "A security notice" not in text_of(river.get("/groups/mine/"))
    [read] = events(Action.SECURITY_NOTICE_READ)
    assert (read.actor_id, read.target_id) == (world.river.user.pk, str(incident.pk))
    assert "1 read" in text_of(admin_client.get(f"/audit/incidents/{incident.pk}/"))
    # River reads it among what happened to their account.
    assert "We sent you a security notice." in text_of(river.get("/account/activity/"))


def test_nobody_is_told_twice_and_someone_elses_notice_cant_be_marked(
    world, incident, admin_client
):
    services.incident_notify(actor=world.admin, incident=incident, ip=None)
    again = admin_client.post(f"/audit/incidents/{incident.pk}/notify/", {"confirm": "on"})
    assert again.status_code == 400
    assert "Everyone affected has been told already." in text_of(again)
    assert SecurityNotice.objects.count() == 3 - 1  # Lantern and River

    lantern_notice = SecurityNotice.objects.get(user=world.lantern.user)
    river = client_of(world.river.user, verified=False)
    assert river.post(f"/notices/{lantern_notice.pk}/read/").status_code == 404
    assert SecurityNotice.objects.get(pk=lantern_notice.pk).read_at is None
    # A "next" elsewhere goes home instead.
    own = SecurityNotice.objects.get(user=world.river.user)
    response = river.post(f"/notices/{own.pk}/read/", {"next": "https://elsewhere.example/"})
    assert response["Location"] == "/account/"


def test_the_notice_tells_what_had_been_done_when_it_was_sent(world):
    incident = open_incident(world, users=[], groups=[world.group])
    services.incident_hold_meetings(actor=world.admin, incident=incident, ip=None)
    services.incident_notify(actor=world.admin, incident=incident, ip=None)
    notice = SecurityNotice.objects.get(user=world.river.user)
    assert notice.step_words == ["We paused some meetings while we check what happened."]


def test_the_members_of_a_group_an_affected_facilitator_runs_are_affected_too(world):
    # Whoever holds Lantern's account could read what Lantern's group shared with it.
    incident = open_incident(world, users=[world.lantern.user], groups=[])
    services.incident_notify(actor=world.admin, incident=incident, ip=None)
    told = set(SecurityNotice.objects.values_list("user__username", flat=True))
    assert told == {"fac-lantern", "river-handle"}


def test_a_notice_counts_as_emailed_only_once_the_mail_server_took_it(
    world, incident, settings, mailoutbox, django_capture_on_commit_callbacks
):
    """An address the server refuses does not stop the others' emails, and its notice
    (the export, the report's counts) and the audit do not say it was emailed."""
    settings.EMAIL_BACKEND = BACKEND
    refused = make_person("refused-member", email=f"someone.{REFUSED_MARK}@example.org")
    accepted = make_person("accepted-member", email="accepted@example.org")
    give_place(world.group, refused, "Refused")
    give_place(world.group, accepted, "Accepted")
    with django_capture_on_commit_callbacks(execute=True):
        sent = services.incident_notify(actor=world.admin, incident=incident, ip=None)
    assert sent["emails_queued"] == 3  # Lantern, and the two above
    assert sorted(mail.to[0] for mail in mailoutbox) == [
        "accepted@example.org",
        "lantern.private@example.org",
    ]
    emailed = dict(SecurityNotice.objects.values_list("user__username", "emailed"))
    assert emailed["refused-member"] is False
    assert emailed["accepted-member"] is True and emailed["fac-lantern"] is True
    assert {e.subject_id for e in events(Action.SECURITY_NOTICE_EMAILED)} == {
        accepted.pk,
        world.lantern.user.pk,
    }
