"""A member's own data (privacy/): "who has seen my data", export and deletion."""

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from accounts.models import BackupCode, BackupCodeDevice, Session, TOTPDevice, User
from audit.describe import DescribedEvent, distinct_looks, runs_of_the_same
from audit.events import Action
from audit.services import record_event
from groups import services as group_services
from groups.models import Membership, Topic
from meetings import services as meeting_services
from meetings.models import Message
from tests.accounts.conftest import (
    IPHONE,
    PASSWORD,
    decoded_sessions,
    dump_every_table,
    enrol_two_factor,
    events,
    log_in,
    new_client,
    reauthenticate,
    signed_in,
    signed_in_client,
)

pytestmark = pytest.mark.django_db

PHONE = "+44 7700 900123"
EMERGENCY = "Alex Doe (sister), +44 20 7946 0958"

NOON = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def add_recovery_email(client, email, capture):
    with capture(execute=True):
        return client.post("/account/email/", {"email": email})


def link_in(mail) -> str:
    return re.search(re.escape(settings.SITE_URL) + r"(/\S+)", mail.body).group(1)


# --- who has seen my data -------------------------------------------------------------------


def test_it_lists_looks_at_the_members_data_in_plain_language_and_nobody_elses(owner, outsider):
    facilitator = User.objects.create_user(username="group-lead-kim")
    record_event(
        action=Action.CONTACT_DETAILS_REVEALED, actor=facilitator, subject=owner, group_id=7
    )
    record_event(
        action=Action.APPLICATION_ANSWERS_VIEWED, actor=facilitator, subject=outsider, group_id=7
    )
    record_event(action=Action.MEMBERSHIP_IDENTITY_VIEWED, actor=facilitator, subject=outsider)
    log_in(new_client(), owner.username, "not the password at all")
    log_in(new_client(), outsider.username, "not the password at all")
    client = signed_in_client(owner)

    page = client.get("/account/activity/").content.decode()

    looks, activity = page.split('id="activity-heading"')
    assert "opened your emergency contact details, after writing a reason." in looks
    assert "You signed in." in activity
    assert activity.count("Someone tried to sign in to your account with a wrong password.") == 1
    # Other people's records are not here, and nobody who looked is named.
    assert "read your application answers" not in page
    assert "looked up which account" not in page
    assert facilitator.username not in page
    assert outsider.username not in page
    # The home page counts the looks.
    assert "(1 look at your details recorded)" in client.get("/account/").content.decode()


def test_mistyping_ones_own_password_to_confirm_it_is_you_is_not_someone_elses_attempt(owner):
    client = signed_in_client(owner)
    refused = client.post("/accounts/reauthenticate/", {"password": "not the password at all"})
    assert refused.status_code == 200

    page = client.get("/account/activity/").content.decode()
    assert "You typed a wrong password when asked to confirm it was you." in page
    assert "Someone tried to sign in" not in page
    (failed,) = events(Action.LOGIN_FAILED)
    assert (failed.actor_id, failed.subject_id) == (owner.pk, owner.pk)
    assert failed.extra == {"known_account": True, "confirming_identity": True}


def looks_on_the_page(owner) -> str:
    page = signed_in_client(owner).get("/account/activity/").content.decode()
    return page.split('id="access-heading"')[1].split('id="activity-heading"')[0]


def test_one_facilitator_reloading_while_reviewing_is_one_look_and_the_log_keeps_every_load(
    owner,
):
    facilitator = User.objects.create_user(username="group-lead-kim")
    for _ in range(8):  # a facilitator reloading the review page after asks, notes, approve
        record_event(
            action=Action.APPLICATION_ANSWERS_VIEWED, actor=facilitator, subject=owner, group_id=7
        )

    looks = looks_on_the_page(owner)

    assert looks.count("read your application answers") == 1
    assert "times since" not in looks and "looks since" not in looks
    assert len(events(Action.APPLICATION_ANSWERS_VIEWED)) == 8  # the log keeps every one


def test_two_people_or_two_sessions_are_separate_looks(owner):
    kim = User.objects.create_user(username="group-lead-kim")
    ash = User.objects.create_user(username="group-lead-ash")
    record_event(action=Action.APPLICATION_ANSWERS_VIEWED, actor=kim, subject=owner, group_id=7)
    record_event(action=Action.APPLICATION_ANSWERS_VIEWED, actor=kim, subject=owner, group_id=7)
    record_event(action=Action.APPLICATION_ANSWERS_VIEWED, actor=ash, subject=owner, group_id=7)

    assert "(2 separate looks since" in looks_on_the_page(owner)


def test_a_look_ends_after_half_an_hour_without_a_reload():
    def load(minutes_ago, actor=1):
        return DescribedEvent(
            when=NOON - timedelta(minutes=minutes_ago),
            text="A facilitator of a group read your application answers.",
            is_access=True,
            looker=(actor, Action.APPLICATION_ANSWERS_VIEWED, "", "", 7),
        )

    # Newest first: loads at 0, 20 and 45 minutes ago are one session (each within 30
    # minutes of the next); 90 minutes ago is an earlier session; someone else's is theirs.
    looks = distinct_looks([load(0), load(20), load(25, actor=2), load(45), load(90)])

    assert [(look.looker[0], look.when, look.since) for look in looks] == [
        (1, NOON, NOON - timedelta(minutes=45)),
        (2, NOON - timedelta(minutes=25), None),
        (1, NOON - timedelta(minutes=90), None),
    ]
    (run,) = runs_of_the_same(looks)
    assert (run.times, run.since) == (3, NOON - timedelta(minutes=90))


def test_only_repeats_within_an_hour_of_each_other_are_put_together():
    def seen(minutes_ago, text="A facilitator of a group read your application answers."):
        return DescribedEvent(when=NOON - timedelta(minutes=minutes_ago), text=text, is_access=True)

    other = "A facilitator of a group opened your emergency contact details."
    runs = runs_of_the_same([seen(0), seen(10), seen(65), seen(200), seen(201, other), seen(202)])

    assert [(run.times, run.when, run.since) for run in runs] == [
        (3, NOON, NOON - timedelta(minutes=65)),  # each within an hour of the next
        (1, NOON - timedelta(minutes=200), None),  # more than an hour after those
        (1, NOON - timedelta(minutes=201), None),  # another kind of look
        (1, NOON - timedelta(minutes=202), None),  # not next to its like
    ]


def test_it_shows_an_empty_list_to_someone_nobody_looked_at(owner):
    page = signed_in_client(owner).get("/account/activity/").content.decode()

    assert "Nobody has looked at your details." in page


# --- export ---------------------------------------------------------------------------------


@pytest.fixture
def two_people_with_data(owner, outsider, django_capture_on_commit_callbacks, mailoutbox):
    """Both with every kind of contact detail, set through the pages."""
    details = {
        owner: ("owner.private@mail.test", PHONE, EMERGENCY),
        outsider: ("zebra.crossing@elsewhere.test", "+1 555 867 5309", "Morgan Quill, brother"),
    }
    for person, (email, phone, emergency) in details.items():
        client = signed_in_client(person)
        add_recovery_email(client, email, django_capture_on_commit_callbacks)
        client.post(link_in(mailoutbox[-1]))
        client.post("/account/contact/", {"phone": phone, "emergency_contact": emergency})
    return details


def test_it_exports_the_members_decrypted_data_after_reauthentication(
    owner, outsider, two_people_with_data
):
    client = signed_in_client(owner, IPHONE)

    first = client.post("/account/export/")
    assert first.status_code == 302
    assert first["Location"] == "/accounts/reauthenticate/?next=%2Faccount%2Fexport%2F"
    assert not events(Action.DATA_EXPORTED)
    reauthenticate(client)
    assert client.get("/account/export/").status_code == 200  # a page with a button
    response = client.post("/account/export/")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"] == 'attachment; filename="my-data.json"'
    data = json.loads(response.content)
    email, phone, emergency = two_people_with_data[owner]
    assert data["account"]["login_handle"] == owner.username
    assert data["account"]["recovery_email"] == email
    assert data["account"]["recovery_email_verified"] is True
    assert data["account"]["phone"] == phone
    assert data["account"]["emergency_contact"] == emergency
    assert any(s["device"] == "Safari on iPhone" for s in data["sessions"])
    assert {"Login succeeded", "Email verified", "Contact details changed"} <= {
        e["what"] for e in data["events_about_you"]
    }
    # Nothing about anybody else.
    raw = response.content.decode()
    assert outsider.username not in raw
    for value in two_people_with_data[outsider]:
        assert value not in raw
    exported = events(Action.DATA_EXPORTED)
    assert [(e.actor_id, e.subject_id) for e in exported] == [(owner.pk, owner.pk)]


def test_it_comes_back_to_the_export_page_after_the_password_is_confirmed(owner):
    # The waiting POST is not kept (issue 18: the session would hold the whole request):
    # the password leads back to the page, and its button then works.
    client = signed_in_client(owner)
    first = client.post("/account/export/")

    confirmed = client.post(first["Location"], {"password": PASSWORD})

    assert confirmed["Location"] == "/account/export/"
    assert not events(Action.DATA_EXPORTED)
    response = client.post("/account/export/")
    assert response.status_code == 200
    assert json.loads(response.content)["account"]["login_handle"] == owner.username
    assert len(events(Action.DATA_EXPORTED)) == 1


# --- deletion -------------------------------------------------------------------------------


def test_it_deletes_the_account_and_leaves_no_trace_of_who_they_were(
    owner, outsider, two_people_with_data
):
    email, phone, emergency = two_people_with_data[owner]
    client = signed_in_client(owner)
    device, backup_codes = enrol_two_factor(client, owner)
    other_device = new_client(IPHONE)
    log_in(other_device, owner.username)
    other_device.post("/accounts/login/two-factor/", {"code": backup_codes[0]})
    assert signed_in(other_device)
    owner_id = owner.pk

    first = client.post("/account/delete/", {"confirm": "delete my account"})
    assert first.status_code == 302
    assert first["Location"].startswith("/accounts/reauthenticate/")
    assert User.objects.filter(pk=owner_id).exists()
    reauthenticate(client)
    response = client.post("/account/delete/", {"confirm": "Delete My Account "})

    assert response.status_code == 200
    assert "Your account is deleted" in response.content.decode()
    assert not User.objects.filter(pk=owner_id).exists()
    assert not Session.objects.filter(user_id=owner_id).exists()
    assert not TOTPDevice.objects.filter(user_id=owner_id).exists()
    assert not BackupCodeDevice.objects.filter(user_id=owner_id).exists()
    assert not BackupCode.objects.filter(device__user_id=owner_id).exists()
    assert not signed_in(client) and not signed_in(other_device)
    # A raw dump of every table (and every session's data) holds nothing of who they were.
    dump = dump_every_table() + decoded_sessions()
    folded = dump.casefold()
    for secret in [owner.username, email, phone, "7700 900123", emergency, "Alex Doe"]:
        assert secret.casefold() not in folded, secret
    # ...while the other member is untouched.
    assert outsider.username in dump
    outsider.refresh_from_db()
    assert outsider.phone == two_people_with_data[outsider][1]
    deleted = events(Action.ACCOUNT_DELETED)
    assert [(e.actor_id, e.subject_id, e.extra) for e in deleted] == [(owner_id, owner_id, {})]
    # The handle is free again, and the old password opens nothing.
    assert log_in(new_client(), owner.username).status_code == 200


def test_it_ends_memberships_and_leaves_messages_as_removed_when_the_account_is_deleted(
    owner, outsider, admin_user
):
    group = group_services.group_create(
        actor=admin_user,
        name="Evening Grief Circle",
        topic=Topic.GRIEF,
        description="A gentle weekly space.",
        guidelines=["What is shared here stays here."],
        agreement_text="I keep what is said here confidential.",
        # Plain meetings: the messages below are posted as text (tests/factories.py says why).
        e2ee_meetings=False,
    )
    places = {}
    for person, pseudonym in [(owner, "Lantern Moth"), (outsider, "River Stone")]:
        membership = group_services.membership_create(
            group=group, user=person, actor=None, reason="test"
        )
        places[person] = group_services.membership_take_place(
            actor=membership.user,
            group=membership.group,
            pseudonym=pseudonym,
            typed_name=pseudonym,
            guidelines_acknowledged=True,
        )
    group_services.facilitator_appoint(group=group, actor=admin_user, user=admin_user)
    now = timezone.now()
    (meeting,) = meeting_services.meeting_schedule(
        group=group,
        actor=admin_user,
        title="Tuesday circle",
        starts_at=now - timedelta(minutes=5),
        ends_at=now + timedelta(hours=1),
    )
    meeting_services.meeting_open(meeting=meeting, actor=admin_user)
    said = {
        person: meeting_services.message_post(
            meeting_id=meeting.pk, membership_id=places[person].pk, client_id=str(n), body=body
        ).message
        for n, (person, body) in enumerate(
            [(owner, "I relapsed on Sunday night"), (outsider, "Thank you for telling us")]
        )
    }
    client = signed_in_client(owner)
    reauthenticate(client)

    client.post("/account/delete/", {"confirm": "delete my account"})

    assert not Membership.objects.filter(pk=places[owner].pk).exists()
    gone = Message.objects.get(pk=said[owner].pk)
    assert gone.body is None and gone.author_id is None
    shown = meeting_services.message_event(gone)
    assert (shown["author"], shown["body"]) == ("[removed]", "[removed]")
    kept = meeting_services.message_event(Message.objects.get(pk=said[outsider].pk))
    assert (kept["author"], kept["body"]) == ("River Stone", "Thank you for telling us")
    dump = (dump_every_table() + decoded_sessions()).casefold()
    for secret in [owner.username, "Lantern Moth", "relapsed"]:
        assert secret.casefold() not in dump, secret


def test_it_needs_the_confirmation_typed_exactly(owner):
    client = signed_in_client(owner)
    reauthenticate(client)

    response = client.post("/account/delete/", {"confirm": "yes"})

    assert response.status_code == 200
    assert "Please type “delete my account” exactly." in response.content.decode()
    assert User.objects.filter(pk=owner.pk).exists()
    assert signed_in(client)
    assert not events(Action.ACCOUNT_DELETED)


def test_it_forgets_a_login_that_stopped_at_the_code_step_when_the_account_is_deleted(owner):
    client = signed_in_client(owner)
    _, backup_codes = enrol_two_factor(client, owner)
    # Someone (the owner on another computer) typed the password and walked away.
    abandoned = new_client()
    assert log_in(abandoned, owner.username)["Location"] == "/accounts/login/two-factor/"
    reauthenticate(client)

    client.post("/account/delete/", {"confirm": "delete my account"})

    assert owner.username not in decoded_sessions()
    assert not User.objects.filter(pk=owner.pk).exists()
