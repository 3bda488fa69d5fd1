"""Taking a place in a group under a pseudonym: the rules a name must follow, uniqueness
inside the group (case, accents, look-alikes), changing it (audited, once a day) and leaving."""

from datetime import timedelta
from html import unescape

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import timezone

from audit.events import Action
from groups import services
from groups.models import Membership, Role, Signature, Status
from groups.pseudonyms import clean_pseudonym, pseudonym_key
from tests.groups.conftest import (
    appoint,
    events,
    give_place,
    html,
    make_group,
    make_person,
    sign_in,
    sign_in_verified,
)

pytestmark = pytest.mark.django_db

HANDLE = "river-otter"


@pytest.fixture
def group(admin):
    return make_group(admin)


@pytest.fixture
def newcomer(group):
    """Someone with a place in the group who has not chosen a name yet, signed in."""
    user = make_person(HANDLE)
    membership = give_place(group, user)
    return membership, sign_in(user)


def take_place(client, group, pseudonym, *, typed_name=None, acknowledged=True):
    data = {"pseudonym": pseudonym, "typed_name": pseudonym if typed_name is None else typed_name}
    if acknowledged:
        data["guidelines_acknowledged"] = "on"
    return client.post(f"/groups/{group.slug}/join/", data)


def assert_nothing_saved(membership):
    membership.refresh_from_db()
    assert membership.pseudonym == ""
    assert membership.pseudonym_key == ""
    assert membership.status == Status.PENDING_AGREEMENT
    assert not Signature.objects.filter(membership=membership).exists()
    assert not events(Action.AGREEMENT_SIGNED, subject_id=membership.user_id)
    assert not events(Action.PSEUDONYM_CHANGED, subject_id=membership.user_id)


# --- the rules themselves ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "variant",
    [
        "Quiet Fox",
        "quiet fox",
        "QUIET FOX",
        "quiet-fox",
        "quiet_fox",
        "Quiet.Fox",
        "Qu1et F0x",
        "Quïet Föx",
        "Qùiet  Fóx",
        "Quiet Fox",  # NBSP
        "Quіet Fox",  # Cyrillic і
        "Quiеt Fоx",  # Cyrillic е and о
        "Quıet Fox",  # Latin dotless ı
    ],
)
def test_look_alike_names_fold_to_the_same_key(variant):
    assert pseudonym_key(variant) == pseudonym_key("Quiet Fox")


def test_all_cyrillic_look_alikes_fold_to_the_latin_key():
    assert pseudonym_key("Асе") == pseudonym_key("Ace")  # А, с, е are Cyrillic


def test_different_names_keep_different_keys():
    assert pseudonym_key("Quiet Fox") != pseudonym_key("Quiet Box")
    assert pseudonym_key("Quiet Fox") != pseudonym_key("Quiet Foxes")


def test_it_tidies_spacing():
    assert clean_pseudonym("  Quiet   Fox ", login_handle=HANDLE) == "Quiet Fox"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("Al", "at least 3 characters"),
        ("  A  ", "at least 3 characters"),
        ("x" * 31, "at most 30 characters"),
        ("Quiet<Fox>", "Use letters, numbers"),
        ("Fox!", "Use letters, numbers"),
        ("-Fox-", "Use letters, numbers"),
        ("Quiet\u200bFox", "Use letters, numbers"),  # zero-width space
        ("Quiet\U0001f98aFox", "Use letters, numbers"),  # emoji
        ("Quіet Fox", "one alphabet"),  # Latin with a Cyrillic і
        ("Fox Λύκος", "one alphabet"),
        ("12345", "at least one letter"),
        ("River Otter", "login handle"),
        ("The river-otter", "login handle"),
        ("R1ver 0tter 22", "login handle"),
        ("Rivér Ottér", "login handle"),
    ],
)
def test_it_refuses_bad_names_saying_why(value, message):
    with pytest.raises(ValidationError) as refused:
        clean_pseudonym(value, login_handle=HANDLE)
    assert message in " ".join(refused.value.messages)


@pytest.mark.parametrize("value", ["Fox", "x" * 30, "O'Brien-Smith", "Лиса", "Αλεπού", "Fox 2"])
def test_it_accepts_good_names(value):
    assert clean_pseudonym(value, login_handle=HANDLE) == value


# --- taking a place through the page -----------------------------------------------------------


def test_it_takes_a_place_with_a_name_and_a_signature(group, newcomer):
    membership, client = newcomer

    # The member area is closed until the name is chosen and the agreement signed.
    response = client.get(f"/groups/{group.slug}/home/")
    assert response.status_code == 302
    assert response["Location"] == f"/groups/{group.slug}/join/"
    page = client.get(f"/groups/{group.slug}/join/")
    assert page.status_code == 200
    assert "I keep what is said here confidential." in html(page)

    response = take_place(client, group, "  Quiet   Fox ")

    assert response.status_code == 302
    assert response["Location"] == f"/groups/{group.slug}/home/"
    membership.refresh_from_db()
    assert membership.pseudonym == "Quiet Fox"
    assert membership.pseudonym_key == pseudonym_key("Quiet Fox")
    assert membership.status == Status.ACTIVE
    # The first choice is not a change: it is neither rate limited nor audited as one.
    assert membership.pseudonym_changed_at is None
    assert not events(Action.PSEUDONYM_CHANGED)
    home = client.get(f"/groups/{group.slug}/home/")
    assert home.status_code == 200
    assert "You are <strong>Quiet Fox</strong> here" in html(home)


@pytest.mark.parametrize(
    ("pseudonym", "message"),
    [
        ("Al", "Please use at least 3 characters."),
        ("x" * 31, "Please use at most 30 characters."),
        ("Quiet<Fox>", "Use letters, numbers, spaces, hyphens, dots or apostrophes"),
        ("Quiet Fox!!", "Use letters, numbers, spaces, hyphens, dots or apostrophes"),
        ("Quіet Fox", "Please use letters from one alphabet only."),
        ("2468", "Please include at least one letter."),
        ("River Otter", "can't contain your login handle"),
        ("Big RIVER-OTTER", "can't contain your login handle"),
        ("x" * 61, "Ensure this value has at most 60 characters"),
        ("", "This field is required."),
    ],
)
def test_bad_names_get_a_clear_error_and_nothing_is_saved(group, newcomer, pseudonym, message):
    membership, client = newcomer

    response = take_place(client, group, pseudonym, typed_name=pseudonym or "Quiet Fox")

    assert response.status_code == 200
    assert message in unescape(html(response))
    assert_nothing_saved(membership)
    assert client.get(f"/groups/{group.slug}/home/").status_code == 302


@pytest.mark.parametrize(
    "duplicate",
    ["Quiet Fox", "quiet fox", "quiet-fox", "QUIET_FOX", "Qu1et F0x", "Quïet Föx", "Quıet Fox"],
)
def test_a_name_that_looks_like_a_taken_one_is_refused(group, newcomer, duplicate):
    give_place(group, make_person("someone-else"), "Quiet Fox")
    membership, client = newcomer

    response = take_place(client, group, duplicate)

    assert response.status_code == 200
    assert "Someone in this group already uses that name" in html(response)
    assert_nothing_saved(membership)


def test_an_all_cyrillic_look_alike_of_a_taken_name_is_refused(group, newcomer):
    give_place(group, make_person("someone-else"), "Ace")
    membership, client = newcomer

    response = take_place(client, group, "Асе")

    assert "Someone in this group already uses that name" in html(response)
    assert_nothing_saved(membership)


def test_a_departed_members_name_stays_reserved(group, newcomer):
    departed = give_place(group, make_person("someone-else"), "Quiet Fox")
    services.membership_leave(actor=departed.user, group=departed.group)
    membership, client = newcomer

    response = take_place(client, group, "quiet fox")

    assert "Someone in this group already uses that name" in html(response)
    assert_nothing_saved(membership)


def test_the_same_name_is_free_in_another_group(admin, group, newcomer):
    other = make_group(admin, "Sober Mornings")
    give_place(other, make_person("someone-else"), "Quiet Fox")
    membership, client = newcomer

    assert take_place(client, group, "Quiet Fox").status_code == 302
    membership.refresh_from_db()
    assert membership.pseudonym == "Quiet Fox"


def test_the_typed_signature_must_match_the_chosen_name(group, newcomer):
    membership, client = newcomer

    response = take_place(client, group, "Quiet Fox", typed_name="Brave Owl")

    assert response.status_code == 200
    assert "Please type your name in this group exactly as chosen." in html(response)
    assert_nothing_saved(membership)


def test_the_guidelines_must_be_acknowledged(group, newcomer):
    membership, client = newcomer

    response = take_place(client, group, "Quiet Fox", acknowledged=False)

    assert response.status_code == 200
    assert "This field is required." in html(response)
    assert_nothing_saved(membership)


def test_the_service_refuses_an_unacknowledged_signature_too(group, newcomer):
    membership, _ = newcomer

    with pytest.raises(services.GroupError) as refused:
        services.membership_take_place(
            actor=membership.user,
            group=membership.group,
            pseudonym="Quiet Fox",
            typed_name="Quiet Fox",
            guidelines_acknowledged=False,
        )
    assert (refused.value.code, refused.value.field) == (
        "guidelines_not_acknowledged",
        "guidelines_acknowledged",
    )
    assert_nothing_saved(membership)


def test_a_second_take_place_sends_to_signing(group, newcomer):
    _, client = newcomer
    take_place(client, group, "Quiet Fox")

    response = client.get(f"/groups/{group.slug}/join/")

    assert response.status_code == 302
    assert response["Location"] == f"/groups/{group.slug}/agreement/sign/"


# --- changing one's name ---------------------------------------------------------------------


@pytest.fixture
def member(group):
    user = make_person(HANDLE)
    membership = give_place(group, user, "Quiet Fox")
    return membership, sign_in(user)


def change_name(client, group, pseudonym):
    return client.post(f"/groups/{group.slug}/name/", {"pseudonym": pseudonym})


def test_changing_ones_name_is_audited(group, member):
    membership, client = member

    response = change_name(client, group, "Brave Owl")

    assert response.status_code == 302
    assert response["Location"] == f"/groups/{group.slug}/home/"
    membership.refresh_from_db()
    assert membership.pseudonym == "Brave Owl"
    assert membership.pseudonym_key == pseudonym_key("Brave Owl")
    assert membership.pseudonym_changed_at is not None
    [event] = events(Action.PSEUDONYM_CHANGED)
    assert (event.actor_id, event.subject_id, event.group_id) == (
        membership.user_id,
        membership.user_id,
        group.pk,
    )
    assert event.target_id == str(membership.pk)
    # The audit log names ids, never the names themselves.
    assert "Brave Owl" not in str(event.extra) and "Quiet Fox" not in str(event.extra)
    assert "You are <strong>Brave Owl</strong> here" in html(
        client.get(f"/groups/{group.slug}/home/")
    )


def test_a_name_can_change_only_once_a_day(group, member):
    membership, client = member
    assert change_name(client, group, "Brave Owl").status_code == 302

    response = change_name(client, group, "Calm Heron")

    assert response.status_code == 200
    assert "You can change your name in a group once a day." in html(response)
    membership.refresh_from_db()
    assert membership.pseudonym == "Brave Owl"
    assert len(events(Action.PSEUDONYM_CHANGED)) == 1

    # A day later it may change again.
    Membership.objects.filter(pk=membership.pk).update(
        pseudonym_changed_at=timezone.now() - timedelta(days=1, minutes=1)
    )
    assert change_name(client, group, "Calm Heron").status_code == 302
    membership.refresh_from_db()
    assert membership.pseudonym == "Calm Heron"
    assert len(events(Action.PSEUDONYM_CHANGED)) == 2


def test_a_change_in_capitals_only_is_still_a_change_and_audited(group, member):
    membership, client = member

    assert change_name(client, group, "QUIET FOX").status_code == 302

    membership.refresh_from_db()
    assert membership.pseudonym == "QUIET FOX"
    assert len(events(Action.PSEUDONYM_CHANGED, subject_id=membership.user_id)) == 1


@pytest.mark.parametrize(
    ("pseudonym", "message"),
    [
        ("Al", "Please use at least 3 characters."),
        ("Quіet Owl", "Please use letters from one alphabet only."),
        ("River Otter", "can't contain your login handle"),
        ("Lantern", "Someone in this group already uses that name"),
        ("l4ntern", "Someone in this group already uses that name"),
    ],
)
def test_a_refused_change_saves_nothing_and_does_not_count(group, member, pseudonym, message):
    give_place(group, make_person("someone-else"), "Lantern")
    membership, client = member

    response = change_name(client, group, pseudonym)

    assert response.status_code == 200
    assert message in unescape(html(response))
    membership.refresh_from_db()
    assert membership.pseudonym == "Quiet Fox"
    assert membership.pseudonym_changed_at is None
    assert not events(Action.PSEUDONYM_CHANGED)
    # Not counted: a good name is still allowed today.
    assert change_name(client, group, "Brave Owl").status_code == 302


def test_a_name_cannot_be_chosen_through_the_change_form(group, newcomer):
    """The first choice goes with signing; the change form does not skip it."""
    membership, client = newcomer

    response = change_name(client, group, "Quiet Fox")

    assert response.status_code == 302
    assert response["Location"] == f"/groups/{group.slug}/join/"
    assert_nothing_saved(membership)


# --- leaving -----------------------------------------------------------------------------------


def test_leaving_ends_access_and_is_audited(group, member):
    membership, client = member

    confirm = client.get(f"/groups/{group.slug}/leave/")
    assert confirm.status_code == 200
    response = client.post(f"/groups/{group.slug}/leave/")

    assert response.status_code == 302
    assert response["Location"] == "/groups/mine/"
    membership.refresh_from_db()
    assert membership.status == Status.LEFT
    [event] = events(Action.MEMBER_LEFT)
    assert (event.actor_id, event.subject_id, event.group_id) == (
        membership.user_id,
        membership.user_id,
        group.pk,
    )
    for path in ("home/", "join/", "agreement/", "agreement/sign/", "leave/"):
        assert client.get(f"/groups/{group.slug}/{path}").status_code == 404, path
    assert change_name(client, group, "Brave Owl").status_code == 404
    assert client.post(f"/groups/{group.slug}/leave/").status_code == 404
    assert group.name not in html(client.get("/groups/mine/"))
    assert f"/groups/{group.slug}/home/" not in html(client.get(f"/groups/{group.slug}/"))


def test_a_facilitator_who_leaves_loses_the_manage_pages(admin, group):
    facilitator = make_person("fac-one")
    membership = appoint(group, facilitator, "Lantern", actor=admin)
    client = sign_in_verified(facilitator)
    assert client.get(f"/groups/{group.slug}/manage/").status_code == 200

    client.post(f"/groups/{group.slug}/leave/")

    membership.refresh_from_db()
    assert (membership.status, membership.role) == (Status.LEFT, Role.MEMBER)
    assert client.get(f"/groups/{group.slug}/manage/").status_code == 404
    assert client.get(f"/groups/{group.slug}/home/").status_code == 404


def test_a_returning_member_signs_again_before_entering(admin, group, member):
    membership, client = member
    client.post(f"/groups/{group.slug}/leave/")

    facilitator = make_person("fac-one")
    appoint(group, facilitator, "Lantern", actor=admin)
    _, token = services.invitation_create(group=group, actor=facilitator)
    response = client.post(f"/groups/invitation/{token}/")
    assert response.status_code == 302

    membership.refresh_from_db()
    assert membership.status == Status.PENDING_AGREEMENT
    assert membership.pseudonym == "Quiet Fox"  # their place comes back under the old name
    home = client.get(f"/groups/{group.slug}/home/")
    assert home.status_code == 302
    assert home["Location"] == f"/groups/{group.slug}/agreement/sign/"
    assert "Read and sign it" in html(client.get("/groups/mine/"))

    response = client.post(
        f"/groups/{group.slug}/agreement/sign/",
        {"typed_name": "Quiet Fox", "guidelines_acknowledged": "on"},
    )

    assert response.status_code == 302
    membership.refresh_from_db()
    assert membership.status == Status.ACTIVE
    assert client.get(f"/groups/{group.slug}/home/").status_code == 200
    assert len(events(Action.AGREEMENT_SIGNED, subject_id=membership.user_id)) == 2


def test_my_groups_shows_each_groups_name_status_and_pending_signature(admin, group):
    person = make_person(HANDLE)
    other = make_group(admin, "Sober Mornings")
    give_place(group, person, "Quiet Fox")
    give_place(other, person)
    client = sign_in(person)

    page = html(client.get("/groups/mine/"))

    assert "Evening Grief Circle" in page and "Sober Mornings" in page
    assert "Your name here: <strong>Quiet Fox</strong>" in page
    assert "Your name here: <strong>not chosen yet</strong>" in page
    assert f'href="/groups/{other.slug}/join/"' in page
    assert "Please sign the new agreement" not in page
    assert Client().get("/groups/mine/").status_code == 302  # signed-in people only


# --- the service contract: a member acts on their own place only ---------------------------


@pytest.mark.parametrize(
    "step",
    [
        lambda actor, group: services.membership_take_place(
            actor=actor,
            group=group,
            pseudonym="Stranger",
            typed_name="Stranger",
            guidelines_acknowledged=True,
        ),
        lambda actor, group: services.agreement_sign(
            actor=actor, group=group, typed_name="Stranger", guidelines_acknowledged=True
        ),
        lambda actor, group: services.pseudonym_change(
            actor=actor, group=group, pseudonym="Stranger"
        ),
        lambda actor, group: services.membership_leave(actor=actor, group=group),
    ],
    ids=["take_place", "agreement_sign", "pseudonym_change", "leave"],
)
def test_it_refuses_a_step_in_a_group_where_the_actor_has_no_place(group, step):
    give_place(group, make_person("member-fern"), "Fern")
    stranger = make_person("stranger-wren")

    with pytest.raises(services.GroupError) as refused:
        step(stranger, group)

    assert refused.value.code == "not_a_member"
    assert not Membership.objects.filter(user=stranger).exists()
    for action in (Action.AGREEMENT_SIGNED, Action.PSEUDONYM_CHANGED, Action.MEMBER_LEFT):
        assert not events(action, actor_id=stranger.pk)
