"""Disclosures required by law (issue 23.2): an admin records the legal basis, reference,
recipient and what is disclosed, re-entering their password, and gets the package. The
member is told at once, or, under a legal restriction, not before its end date, when
`manage.py send_disclosure_notices` (run by the scheduler) tells them."""

import hashlib
import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from audit.events import Action
from privacy import services
from privacy.models import Disclosure, DisclosureKind
from tests.database import dump_every_table, events
from tests.factories import PASSWORD
from tests.privacy.conftest import RIVER_EMERGENCY, RIVER_PHONE, clock_shifted

pytestmark = pytest.mark.django_db

NEW = "/disclosures/legal/new/"
COURT = "Family Court, Case FD24P00123"
REFERENCE = "Order FD24P00123"


def form(scene, **overrides):
    data = {
        "handle": "member-river",
        "group": str(scene.group.pk),
        "items": ["contact_details", "attendance"],
        "description": "Contact details and attendance, as the order asks.",
        "legal_basis": "court_order",
        "basis_other": "",
        "reference": REFERENCE,
        "recipient": COURT,
        "restricted_until": "",
        "password": PASSWORD,
    }
    data.update(overrides)
    return data


def notices() -> str:
    out = StringIO()
    call_command("send_disclosure_notices", stdout=out)
    return out.getvalue().strip()


def test_an_admin_records_it_and_the_member_is_told_at_once(
    scene, django_capture_on_commit_callbacks, mailoutbox
):
    admin = scene.client(scene.admin)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin.post(NEW, form(scene))
    assert response.status_code == 200
    assert response["Content-Disposition"] == (
        f'attachment; filename="disclosure-{Disclosure.objects.get().pk}.json"'
    )
    document = json.loads(response.content)
    assert set(document["items"]) == {"contact_details", "attendance"}
    assert document["items"]["contact_details"]["phone"] == RIVER_PHONE
    assert document["disclosure"]["reference"] == REFERENCE
    assert document["disclosure"]["legal_basis"] == "A court order"

    disclosure = Disclosure.objects.get()
    assert disclosure.kind == DisclosureKind.LEGAL
    assert disclosure.member_notified_at is not None
    (made,) = events(Action.LEGAL_DISCLOSURE_MADE)
    digest = hashlib.sha256(response.content).hexdigest()
    assert made.extra["sha256"] == disclosure.package_sha256 == digest
    assert (made.actor_id, made.subject_id) == (scene.admin.pk, scene.river.user_id)
    assert len(events(Action.DISCLOSURE_MEMBER_NOTIFIED, subject_id=scene.river.user_id)) == 1
    # The recipient, the reference and what was disclosed are encrypted at rest.
    dump = dump_every_table()
    for secret in (COURT, REFERENCE, "as the order asks"):
        assert secret not in dump

    # The email names no group and nothing disclosed.
    (mail,) = mailoutbox
    assert mail.to == ["river@example.org"]
    for word in (scene.group.name, "Grief", COURT, REFERENCE, "court", RIVER_PHONE):
        assert word not in mail.subject + mail.body

    page = scene.client(scene.river.user).get("/account/activity/").content.decode()
    shared = page.split('id="shared-heading"')[1].split('id="access-heading"')[0]
    assert COURT in shared and REFERENCE in shared and "A court order" in shared
    assert "An administrator of this site" in shared
    assert scene.admin.username not in page


def test_a_wrong_password_records_nothing_but_the_failed_confirmation(scene):
    admin = scene.client(scene.admin)
    response = admin.post(NEW, form(scene, password="not my password at all"))
    assert response.status_code == 200
    text = response.content.decode()
    assert "There is a problem" in text and "That is not your password." in text
    assert Disclosure.objects.count() == 0
    assert not events(Action.LEGAL_DISCLOSURE_MADE)
    (failed,) = events(Action.LOGIN_FAILED)
    assert failed.actor_id == failed.subject_id == scene.admin.pk
    assert failed.extra["confirming_identity"] is True


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"legal_basis": "other"}, "Describe the legal obligation."),
        ({"group": ""}, "Choose the group whose records these are."),
        ({"handle": "nobody-at-all"}, "No account has that login handle."),
        ({"group": "OTHER"}, "This person has no place or application in that group."),
        ({"restricted_until": "2000-01-01"}, "The restriction must end after today"),
        ({"items": ["summary"], "summary": ""}, "Write the summary"),
        ({"reference": ""}, "This field is required."),
    ],
)
def test_bad_input_re_renders_the_form_with_its_messages(scene, overrides, message):
    if overrides.get("group") == "OTHER":
        overrides["group"] = str(scene.other_group.pk)
    response = scene.client(scene.admin).post(NEW, form(scene, **overrides))
    assert response.status_code == 200
    text = response.content.decode()
    assert "There is a problem" in text
    assert message in text
    assert Disclosure.objects.count() == 0


def test_only_an_admin_may_make_one(scene):
    for someone in (scene.facilitator.user, scene.fern.user):
        with pytest.raises(services.PrivacyError) as refused:
            services.legal_disclosure_make(
                actor=someone,
                subject=scene.river.user,
                group=None,
                items=["contact_details"],
                legal_basis="court_order",
                basis_other="",
                reference=REFERENCE,
                recipient=COURT,
                description="Contact details.",
                summary=None,
                restricted_until=None,
            )
        assert refused.value.code == "not_admin"
    assert Disclosure.objects.count() == 0


def test_a_restricted_disclosure_is_invisible_until_its_end_then_the_member_is_told(
    scene, django_capture_on_commit_callbacks, mailoutbox
):
    ends = timezone.localdate() + timedelta(days=10)
    with django_capture_on_commit_callbacks(execute=True):
        response = scene.client(scene.admin).post(
            NEW, form(scene, restricted_until=ends.isoformat(), legal_basis="law_enforcement")
        )
    assert response.status_code == 200
    disclosure = Disclosure.objects.get()
    assert disclosure.member_notified_at is None
    assert mailoutbox == []
    # Its audit event names no subject while telling River is restricted.
    (made,) = events(Action.LEGAL_DISCLOSURE_MADE)
    assert made.subject_id is None

    def river_sees_it() -> bool:
        river = scene.client(scene.river.user)
        pages = "".join(
            river.get(path).content.decode()
            for path in ("/account/activity/", "/account/", "/account/consents/")
        )
        export = json.dumps(services.account_export(user=scene.river.user, request=_request()))
        return any(
            word in pages + export
            for word in (COURT, REFERENCE, "law enforcement", "An administrator")
        )

    assert not river_sees_it()
    # The day before the end, the scheduler's command still tells nobody.
    with clock_shifted(timedelta(days=9)):
        assert notices() == "Told 0 member(s) about a disclosure."
        assert not river_sees_it()

    with clock_shifted(timedelta(days=10)), django_capture_on_commit_callbacks(execute=True):
        assert notices() == "Told 1 member(s) about a disclosure."
        assert river_sees_it()
    (mail,) = mailoutbox
    assert mail.to == ["river@example.org"] and scene.group.name not in mail.body
    disclosure.refresh_from_db()
    assert disclosure.member_notified_at is not None
    (told,) = events(Action.DISCLOSURE_MEMBER_NOTIFIED)
    assert told.subject_id == scene.river.user_id and told.target_id == str(disclosure.pk)
    # Running it again tells nobody twice.
    with clock_shifted(timedelta(days=11)):
        assert notices() == "Told 0 member(s) about a disclosure."


def test_the_admins_access_review_shows_a_restricted_disclosure_marked(scene):
    ends = timezone.localdate() + timedelta(days=10)
    admin = scene.client(scene.admin)
    admin.post(NEW, form(scene, restricted_until=ends.isoformat()))
    page = admin.get(reverse("disclosures:access_review"), {"handle": "member-river"})
    text = page.content.decode()
    assert COURT in text
    assert "Not yet: restricted until" in text
    assert Disclosure.objects.get().package_sha256 in text
    # The log rows about it are there too, though the event names no subject yet.
    assert "made a disclosure required by law" in text
    listing = admin.get(reverse("disclosures:legal_list")).content.decode()
    assert "Restricted until" in listing and REFERENCE in listing
    # Looking is itself recorded.
    assert events(Action.AUDIT_LOG_VIEWED)[-1].extra["page"] == "access_review"


def test_the_package_holds_no_item_that_was_not_chosen(scene):
    response = scene.client(scene.admin).post(
        NEW, form(scene, items=["attendance"], group=str(scene.group.pk))
    )
    text = response.content.decode()
    assert set(json.loads(text)["items"]) == {"attendance"}
    for private in (RIVER_PHONE, RIVER_EMERGENCY, "river@example.org", "My answer to question"):
        assert private not in text


def _request():
    from django.test import RequestFactory

    return RequestFactory().post("/account/export/")
