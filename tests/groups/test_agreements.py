"""Versioned confidentiality agreements: facilitators publish, old versions stay readable,
every member signs the current one (typing their pseudonym) before entering, and the
facilitators see who has signed by pseudonym."""

import importlib
import re
from html import unescape

import pytest
from django.apps import apps as django_apps
from django.utils import timezone

from audit.events import Action
from groups import services
from groups.models import AgreementVersion, Group, Membership, Signature, Status
from groups.selectors import membership_has_signed_current, signed_current_agreement
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


@pytest.fixture
def group(admin):
    return make_group(admin, agreement_text="Version one: what is said here stays here.")


@pytest.fixture
def facilitator(admin, group):
    user = make_person("fac-one")
    appoint(group, user, "Lantern", actor=admin)
    return user


@pytest.fixture
def facilitator_client(facilitator):
    return sign_in_verified(facilitator)


@pytest.fixture
def member(group):
    user = make_person("member-one")
    return give_place(group, user, "Quiet Fox")


@pytest.fixture
def member_client(member):
    return sign_in(member.user)


def publish(client, group, text, summary=""):
    return client.post(
        f"/groups/{group.slug}/manage/agreement/", {"text": text, "summary": summary}
    )


def sign(client, group, typed_name, *, acknowledged=True):
    data = {"typed_name": typed_name}
    if acknowledged:
        data["guidelines_acknowledged"] = "on"
    return client.post(f"/groups/{group.slug}/agreement/sign/", data)


def section(page: str, heading_id: str) -> str:
    match = re.search(rf'aria-labelledby="{heading_id}">(.*?)</section>', page, re.S)
    assert match, heading_id
    return match.group(1)


def test_group_creation_publishes_version_one(admin, group):
    [agreement] = group.agreements.all()
    assert agreement.version == 1
    assert agreement.published_by == admin
    [event] = events(Action.AGREEMENT_PUBLISHED, group_id=group.pk)
    assert (event.actor_id, event.target_id, event.extra) == (
        admin.pk,
        str(agreement.pk),
        {"version": 1},
    )


def test_a_facilitator_publishes_a_new_version_and_the_old_stays_readable(
    group, facilitator, facilitator_client, member, member_client
):
    form = facilitator_client.get(f"/groups/{group.slug}/manage/agreement/")
    assert form.status_code == 200
    assert "Publish version 2" in html(form)
    assert "Version one: what is said here stays here." in html(form)  # prefilled to edit

    response = publish(
        facilitator_client, group, "Version two: no screenshots either.", "No copies."
    )

    assert response.status_code == 302
    assert response["Location"] == f"/groups/{group.slug}/manage/"
    assert [a.version for a in group.agreements.order_by("version")] == [1, 2]
    latest = group.agreements.get(version=2)
    assert (latest.text, latest.summary, latest.published_by) == (
        "Version two: no screenshots either.",
        "No copies.",
        facilitator,
    )
    [event] = events(Action.AGREEMENT_PUBLISHED, actor_id=facilitator.pk)
    assert (event.group_id, event.target_id, event.extra) == (
        group.pk,
        str(latest.pk),
        {"version": 2},
    )
    assert "Version two" not in str(event.extra)

    page = html(member_client.get(f"/groups/{group.slug}/agreement/"))
    assert "Version 2 (current)" in page
    assert "Version 1<" in page and "Version 1 (current)" not in page
    assert "Version two: no screenshots either." in page
    assert "Version one: what is said here stays here." in page


def test_versions_increment(admin, group):
    for n in range(3):
        services.agreement_publish(group=group, actor=admin, text=f"Text {n}")

    assert list(AgreementVersion.objects.filter(group=group).values_list("version", flat=True)) == [
        4,
        3,
        2,
        1,
    ]
    # Each group counts on its own.
    other = make_group(admin, "Sober Mornings")
    assert [a.version for a in other.agreements.all()] == [1]


def test_an_empty_agreement_is_refused_and_nothing_published(
    group, facilitator, facilitator_client
):
    response = publish(facilitator_client, group, "   ")

    assert response.status_code == 200
    assert "This field is required." in html(response)
    assert group.agreements.count() == 1
    assert len(events(Action.AGREEMENT_PUBLISHED)) == 1
    with pytest.raises(services.GroupError) as refused:
        services.agreement_publish(group=group, actor=facilitator, text=" \n ")
    assert refused.value.code == "empty_agreement"


def test_a_new_version_sends_members_back_to_sign(group, facilitator_client, member, member_client):
    assert member_client.get(f"/groups/{group.slug}/home/").status_code == 200
    publish(facilitator_client, group, "Version two.")

    response = member_client.get(f"/groups/{group.slug}/home/")

    assert response.status_code == 302
    assert response["Location"] == f"/groups/{group.slug}/agreement/sign/"
    mine = html(member_client.get("/groups/mine/"))
    assert "Please sign the new agreement" in mine
    assert f'href="/groups/{group.slug}/agreement/sign/"' in mine
    page = html(member_client.get(f"/groups/{group.slug}/agreement/sign/"))
    assert "published a new version" in page
    assert "Confidentiality agreement, version 2" in page
    assert "Your name in this group is <strong>Quiet Fox</strong>" in page


def test_signing_records_who_which_version_and_when(
    group, facilitator_client, member, member_client
):
    publish(facilitator_client, group, "Version two.")
    before = timezone.now()

    response = sign(member_client, group, "Quiet Fox")

    assert response.status_code == 302
    assert response["Location"] == f"/groups/{group.slug}/home/"
    signature = Signature.objects.get(membership=member, agreement__version=2)
    assert signature.typed_name == "Quiet Fox"
    assert signature.guidelines_acknowledged is True
    assert before <= signature.signed_at <= timezone.now()
    assert Signature.objects.filter(membership=member).count() == 2  # v1 kept
    event = events(Action.AGREEMENT_SIGNED, subject_id=member.user_id)[-1]
    assert (event.actor_id, event.group_id, event.extra) == (
        member.user_id,
        group.pk,
        {"version": 2},
    )
    assert event.target_id == str(signature.pk)
    assert member_client.get(f"/groups/{group.slug}/home/").status_code == 200
    assert "Please sign the new agreement" not in html(member_client.get("/groups/mine/"))
    # Signing again changes nothing.
    again = member_client.get(f"/groups/{group.slug}/agreement/sign/")
    assert "You have signed the current version (2)" in html(again)
    sign(member_client, group, "Quiet Fox")
    assert Signature.objects.filter(membership=member).count() == 2
    assert len(events(Action.AGREEMENT_SIGNED, subject_id=member.user_id)) == 2


@pytest.mark.parametrize(
    ("typed_name", "acknowledged", "message"),
    [
        ("Brave Owl", True, "Please type your name in this group exactly as chosen."),
        ("member-one", True, "Please type your name in this group exactly as chosen."),
        ("", True, "This field is required."),
        ("Quiet Fox", False, "This field is required."),
    ],
)
def test_a_wrong_signature_is_refused_and_nothing_saved(
    group, facilitator_client, member, member_client, typed_name, acknowledged, message
):
    publish(facilitator_client, group, "Version two.")

    response = sign(member_client, group, typed_name, acknowledged=acknowledged)

    assert response.status_code == 200
    assert message in unescape(html(response))
    assert not Signature.objects.filter(membership=member, agreement__version=2).exists()
    assert len(events(Action.AGREEMENT_SIGNED, subject_id=member.user_id)) == 1
    assert member_client.get(f"/groups/{group.slug}/home/").status_code == 302


def test_facilitators_see_who_has_signed_the_current_version_by_pseudonym(
    admin, group, facilitator, facilitator_client, member, member_client
):
    other = give_place(group, make_person("member-two"), "Brave Owl")
    give_place(group, make_person("member-three"))  # has not chosen a name yet

    page = html(facilitator_client.get(f"/groups/{group.slug}/manage/"))
    unsigned = section(page, "signatures-heading")
    assert "Agreement version 1" in unsigned
    assert "(a new member who hasn't chosen a name yet)" in unescape(unsigned)
    assert "Quiet Fox" not in unsigned and "Brave Owl" not in unsigned

    publish(facilitator_client, group, "Version two.")
    sign(member_client, group, "Quiet Fox")

    # Facilitators sign too: the manage page waits until they have.
    to_sign = facilitator_client.get(f"/groups/{group.slug}/manage/")
    assert to_sign["Location"] == f"/groups/{group.slug}/agreement/sign/"
    page = html(sign_in_verified(admin).get(f"/groups/{group.slug}/manage/"))
    unsigned = section(page, "signatures-heading")
    assert "Agreement version 2" in unsigned
    assert "Brave Owl" in unsigned
    assert "Lantern" in unsigned
    assert "Quiet Fox" not in unsigned
    members = section(page, "members-heading")
    rows = dict(re.findall(r"<tr><td>([^<]+)</td>.*?<td>(yes|no)</td>", members, re.S))
    assert rows == {"—": "no", "Brave Owl": "no", "Lantern": "no", "Quiet Fox": "yes"}
    sign(facilitator_client, group, "Lantern")
    page = html(facilitator_client.get(f"/groups/{group.slug}/manage/"))
    assert "Lantern" not in section(page, "signatures-heading")
    # Only pseudonyms: no handles.
    for handle in ("member-one", "member-two", "member-three", facilitator.username):
        assert handle not in page
    assert other.status == Status.ACTIVE


# --- "signed the current version", as every check reads it --------------------------------------


def _signed_current(membership) -> tuple[bool, bool]:
    """The answer for one membership (fresh from the database) and in an annotated list."""
    fresh = Membership.objects.get(pk=membership.pk)
    listed = Membership.objects.annotate(signed_current=signed_current_agreement()).get(
        pk=membership.pk
    )
    return membership_has_signed_current(fresh), listed.signed_current


def test_signed_current_follows_each_new_version_and_each_signing(admin, group, member):
    assert _signed_current(member) == (True, True)
    services.agreement_publish(group=group, actor=admin, text="Version two.")
    assert _signed_current(member) == (False, False)
    services.agreement_sign(
        actor=member.user,
        group=member.group,
        typed_name="Quiet Fox",
        guidelines_acknowledged=True,
    )
    assert _signed_current(member) == (True, True)
    services.agreement_publish(group=group, actor=admin, text="Version three.")
    assert _signed_current(member) == (False, False)


def test_a_place_not_yet_taken_is_not_signed(admin, group):
    membership = services.membership_create(
        group=group, user=make_person("new-one"), actor=admin, reason="test"
    )
    assert membership.signed_agreement is None
    assert _signed_current(membership) == (False, False)


def test_the_migration_fills_both_pointers_from_the_versions_and_signatures(admin, group, member):
    services.agreement_publish(group=group, actor=admin, text="Version two.")
    signed_v2 = give_place(group, make_person("member-two"), "Old Oak")  # signs v2
    Group.objects.update(current_agreement=None)
    Membership.objects.update(signed_agreement=None)

    migration = importlib.import_module("groups.migrations.0002_agreement_pointers")
    migration.fill_pointers(django_apps, None)

    group.refresh_from_db()
    assert group.current_agreement.version == 2
    assert Membership.objects.get(pk=member.pk).signed_agreement.version == 1
    assert Membership.objects.get(pk=signed_v2.pk).signed_agreement.version == 2
    assert _signed_current(member) == (False, False)
    assert _signed_current(signed_v2) == (True, True)
