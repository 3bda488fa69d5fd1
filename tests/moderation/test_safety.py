"""Safety concerns and the break-glass contact reveal.

A member (or facilitator) raises a concern about themselves or another member: the group's
facilitators are alerted on the dashboard and by email, the flagger sees the crisis
resources. A facilitator may then reveal the member's phone and emergency contact, only
after writing a reason and confirming; the reveal is audited, admins are told, and the
member sees it under "Who has seen my data".
"""

import pytest

from audit.events import Action
from moderation.models import ContactReveal, SafetyFlag
from tests.moderation.conftest import (
    RIVER_EMERGENCY,
    RIVER_PHONE,
    appoint,
    events,
    fresh,
    make_person,
    member_client,
    raw_rows,
    text_of,
)

REASON = "River wrote that they plan to end their life tonight; duty to warn."


def raise_flag_url(world):
    return f"/moderation/{world.slug}/safety/"


def reveal_url(world, membership=None):
    return f"/moderation/{world.slug}/members/{(membership or world.river).pk}/reveal/"


@pytest.fixture
def second_facilitators(world):
    """One co-facilitator with an unconfirmed recovery email, one with none."""
    unconfirmed = appoint(
        world.group,
        make_person("ash-login-handle", email="ash.private@example.org", email_verified=False),
        "Ash",
        actor=world.admin,
    )
    without = appoint(world.group, make_person("oak-login-handle"), "Oak", actor=world.admin)
    return unconfirmed, without


# --- raising a concern ------------------------------------------------------------------------


def test_the_page_offers_crisis_resources_and_lists_members_by_pseudonym(world):
    page = member_client(world.fern.user).get(raise_flag_url(world))
    assert page.status_code == 200
    text = text_of(page)
    assert "Call the Night Line on 0800 555 0199, any time." in text
    options = page.content.decode()
    assert f'value="{world.fern.pk}"' in options and "Myself" in options
    for name in ("River", "Lantern", "Harbour"):
        assert name in options
    assert "river-login-handle" not in options


def test_a_member_raises_a_concern_about_another_and_facilitators_are_alerted(
    world, fac, second_facilitators, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = member_client(world.fern.user).post(
            raise_flag_url(world),
            {"about": str(world.river.pk), "note": "River said goodbye to everyone."},
        )
    assert response.status_code == 200
    assert "The facilitators have been told" in text_of(response)
    assert "Call the Night Line on 0800 555 0199, any time." in text_of(response)

    flag = SafetyFlag.objects.get()
    assert (flag.group_id, flag.raised_by_id, flag.about_id) == (
        world.group.pk,
        world.fern.pk,
        world.river.pk,
    )
    assert flag.status == SafetyFlag.Status.OPEN
    assert flag.note == "River said goodbye to everyone."
    assert "goodbye" not in raw_rows("moderation_safetyflag")

    (event,) = events(Action.SAFETY_FLAG_RAISED)
    assert (event.actor_id, event.subject_id, event.group_id) == (
        world.fern.user_id,
        world.river.user_id,
        world.group.pk,
    )
    assert event.extra == {"about_self": False}

    # Email: one message per facilitator of this group with a confirmed recovery email.
    assert [mail.to for mail in mailoutbox] == [["lantern.private@example.org"]]
    (mail,) = mailoutbox
    assert "safety concern" in mail.subject.lower()
    # A neutral link (the dashboard of all their groups) that names no group.
    assert "/moderation/\n" in mail.body
    for secret in ("River", "Fern", "goodbye", "river-login-handle", RIVER_PHONE, world.slug):
        assert secret not in mail.subject + mail.body

    # The dashboard shows it first, with the break-glass link.
    dashboard = fac.get(f"/moderation/{world.slug}/")
    text = text_of(dashboard)
    assert "Safety concerns (1)" in text
    assert "About River, raised by Fern" in text
    assert "River said goodbye to everyone." in text
    assert reveal_url(world) in dashboard.content.decode()
    combined = fac.get("/moderation/")
    assert "1 safety concern" in text_of(combined)
    assert "card--alert" in combined.content.decode()


def test_a_member_may_raise_a_concern_about_themselves(
    world, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        member_client(world.fern.user).post(
            raise_flag_url(world), {"about": str(world.fern.pk), "note": ""}
        )
    flag = SafetyFlag.objects.get()
    assert flag.raised_by_id == flag.about_id == world.fern.pk
    assert flag.note is None
    assert events(Action.SAFETY_FLAG_RAISED)[0].extra == {"about_self": True}
    assert len(mailoutbox) == 1


def test_a_facilitator_raising_a_concern_alerts_the_others_not_themselves(
    world, fac, mailoutbox, django_capture_on_commit_callbacks
):
    appoint(
        world.group,
        make_person("co-login-handle", email="co.private@example.org"),
        "Ash",
        actor=world.admin,
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = fac.post(raise_flag_url(world), {"about": str(world.river.pk), "note": ""})
    assert response.status_code == 200
    assert [mail.to for mail in mailoutbox] == [["co.private@example.org"]]
    assert SafetyFlag.objects.get().raised_by_id == world.facilitator.pk


def test_a_concern_about_someone_outside_the_group_is_refused(world):
    response = member_client(world.fern.user).post(
        raise_flag_url(world), {"about": str(world.stranger.pk), "note": ""}
    )
    assert response.status_code == 200
    assert "Select a valid choice" in text_of(response)
    assert not SafetyFlag.objects.exists()
    assert events(Action.SAFETY_FLAG_RAISED) == []


def test_a_facilitator_marks_a_concern_handled(world, fac):
    member_client(world.fern.user).post(
        raise_flag_url(world), {"about": str(world.river.pk), "note": ""}
    )
    flag = SafetyFlag.objects.get()
    response = fac.post(
        f"/moderation/{world.slug}/flags/{flag.pk}/handled/", {"note": "Called the crisis line."}
    )
    assert response.status_code == 302
    assert response["Location"] == f"/moderation/{world.slug}/"
    flag = fresh(flag)
    assert flag.status == SafetyFlag.Status.HANDLED
    assert flag.handled_by_id == world.facilitator.pk
    assert flag.handled_note == "Called the crisis line."
    (event,) = events(Action.SAFETY_FLAG_HANDLED)
    assert event.actor_id == world.facilitator.user_id
    assert "Safety concerns" not in text_of(fac.get(f"/moderation/{world.slug}/"))

    fac.post(f"/moderation/{world.slug}/flags/{flag.pk}/handled/", {"note": ""})
    assert len(events(Action.SAFETY_FLAG_HANDLED)) == 1


# --- break glass ------------------------------------------------------------------------------


def test_the_reveal_page_warns_and_shows_nothing_yet(world, fac):
    page = fac.get(reveal_url(world))
    assert page.status_code == 200
    text = text_of(page)
    assert "Emergency contact details of River" in text
    assert "recorded" in text
    assert RIVER_PHONE not in page.content.decode()
    assert RIVER_EMERGENCY not in page.content.decode()
    assert events(Action.CONTACT_DETAILS_REVEALED) == []


@pytest.mark.parametrize(
    ("data", "complaint"),
    [
        ({"reason": "", "confirm": "on"}, "This field is required."),
        ({"reason": "worried", "confirm": "on"}, "at least a sentence"),
        ({"reason": "          worried     ", "confirm": "on"}, "at least a sentence"),
        ({"reason": REASON}, "This field is required."),
    ],
    ids=["no-reason", "short-reason", "padded-reason", "not-confirmed"],
)
def test_a_reveal_needs_a_real_reason_and_a_confirmation(
    world, fac, mailoutbox, django_capture_on_commit_callbacks, data, complaint
):
    with django_capture_on_commit_callbacks(execute=True):
        response = fac.post(reveal_url(world), data)
    assert response.status_code == 200
    assert complaint in text_of(response)
    content = response.content.decode()
    assert RIVER_PHONE not in content and RIVER_EMERGENCY not in content
    assert events(Action.CONTACT_DETAILS_REVEALED) == []
    assert not SafetyFlag.objects.exists()
    assert mailoutbox == []


def test_a_reveal_with_a_reason_shows_the_details_and_is_audited_and_admins_are_told(
    world, fac, mailoutbox, django_capture_on_commit_callbacks
):
    # An admin whose recovery email is unconfirmed is not written to.
    make_person("second-admin", staff=True, email="second.admin@example.org", email_verified=False)
    with django_capture_on_commit_callbacks(execute=True):
        response = fac.post(reveal_url(world), {"reason": REASON, "confirm": "on"})
    assert response.status_code == 200
    content = response.content.decode()
    assert RIVER_PHONE in content
    assert RIVER_EMERGENCY in content
    assert "Contact details of River" in text_of(response)
    assert response["Cache-Control"].startswith("no-store")

    (event,) = events(Action.CONTACT_DETAILS_REVEALED)
    assert event.actor_id == world.facilitator.user_id
    assert event.subject_id == world.river.user_id
    assert event.group_id == world.group.pk
    reveal = ContactReveal.objects.get()
    assert (event.target_type, event.target_id) == ("moderation.contactreveal", str(reveal.pk))
    # The reason is kept encrypted with the reveal (for facilitators and auditors), never in
    # the audit row.
    assert reveal.reason == REASON and reveal.membership_id == world.river.pk
    assert event.extra == {}
    assert event.ip  # where it came from, for admins

    # The reason is kept encrypted with the reveal, never readable in a raw dump.
    assert reveal.actor_id == world.facilitator.pk
    stored = raw_rows("moderation_contactreveal") + raw_rows("audit_event")
    assert "duty to warn" not in stored
    assert RIVER_PHONE not in stored

    # Admins with a confirmed recovery email are told; never the details themselves.
    assert [mail.to for mail in mailoutbox] == [["keeper@example.org"]]
    (mail,) = mailoutbox
    assert "revealed" in mail.subject.lower()
    for secret in (RIVER_PHONE, RIVER_EMERGENCY, "River", "duty to warn", "Lantern"):
        assert secret not in mail.subject + mail.body

    # River sees it in "Who has seen my data", without learning who.
    activity = member_client(world.river.user).get("/account/activity/")
    looks = text_of(activity).split("Looks at your details", 1)[1].split("Account activity")[0]
    assert "opened your emergency contact details, after writing a reason" in looks
    assert "Lantern" not in text_of(activity)
    assert "fac-login-handle" not in activity.content.decode()


def test_every_reveal_is_recorded_again(world, fac):
    fac.post(reveal_url(world), {"reason": REASON, "confirm": "on"})
    fac.post(reveal_url(world), {"reason": REASON, "confirm": "on"})
    assert len(events(Action.CONTACT_DETAILS_REVEALED)) == 2


def test_a_member_without_details_shows_as_not_given(world, fac):
    response = fac.post(reveal_url(world, world.fern), {"reason": REASON, "confirm": "on"})
    assert response.status_code == 200
    assert text_of(response).count("(not given)") == 2
    assert events(Action.CONTACT_DETAILS_REVEALED)[0].subject_id == world.fern.user_id
