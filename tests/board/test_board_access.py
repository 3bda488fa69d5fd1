"""Every board URL and action refuses each outsider and wrong role of the issue, and a
refused write changes nothing: another group's member, an applicant, a removed member, a
suspended member, a member who has not signed the new agreement, a facilitator of another
group, and a facilitator whose session skipped the second factor."""

import pytest
from django.urls import reverse

from board import services
from board.models import Post, Thread
from tests.board.conftest import (
    make_person,
    publish_new_agreement,
    signed_in_client,
    submitted_application,
    take_step,
)
from tests.html import without_random_tokens

pytestmark = pytest.mark.django_db

# name, method, extra kwargs, form data
ACTIONS = [
    ("board:index", "get", {}, None),
    ("board:new_thread", "get", {}, None),
    ("board:new_thread", "post", {}, {"title": "Intruding", "body": "Intruding"}),
    ("board:thread", "get", {"number": 1}, None),
    ("board:reply", "post", {"number": 1}, {"body": "Intruding"}),
    ("board:thread_state", "post", {"number": 1}, {"state": "closed", "value": "on"}),
    ("board:delete_post", "get", {"number": 1, "post_number": 1}, None),
    ("board:delete_post", "post", {"number": 1, "post_number": 1}, None),
]


def outsider(scene, kind: str):
    """The person, whether their session passed 2FA, and what they must get."""
    if kind == "other_group_member":
        return scene.other_member.user, False, 404
    if kind == "applicant":
        applicant = make_person("applicant-heron")
        submitted_application(scene.group, applicant)
        return applicant, False, 404
    if kind == "removed":
        take_step(scene, scene.birch, "remove")
        return scene.birch.user, False, 404
    if kind == "suspended":
        take_step(scene, scene.birch, "suspend", minutes=60 * 24)
        return scene.birch.user, False, 403
    if kind == "unsigned":
        publish_new_agreement(scene)
        return scene.birch.user, False, "sign"
    if kind == "other_facilitator":
        return scene.other_facilitator.user, True, 404
    if kind == "unverified_facilitator":
        return scene.facilitator.user, False, "two_factor"
    raise AssertionError(kind)


KINDS = [
    "other_group_member",
    "applicant",
    "removed",
    "suspended",
    "unsigned",
    "other_facilitator",
    "unverified_facilitator",
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name,method,extra,data", ACTIONS, ids=lambda v: str(v))
def test_every_board_action_refuses(scene, kind, name, method, extra, data):
    thread = scene.start(scene.ash, title="Ash's thread", body="Ash's words")
    user, verified, expected = outsider(scene, kind)
    client = signed_in_client(user, verified=verified)
    url = reverse(name, kwargs={"slug": scene.group.slug, **extra})
    response = getattr(client, method)(url, data or {})

    if expected == "sign":
        assert response.status_code == 302
        assert response["Location"] == reverse("groups:sign", kwargs={"slug": scene.group.slug})
    elif expected == "two_factor":
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("account_two_factor_setup"))
    else:
        assert response.status_code == expected
    body = without_random_tokens(response.content)
    assert "Ash's words" not in body and "Ash&#x27;s thread" not in body and "Ash" not in body
    # Nothing changed.
    thread.refresh_from_db()
    assert Thread.objects.count() == 1 and not thread.closed
    assert list(Post.objects.values_list("body", flat=True)) == ["Ash's words"]


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "unverified_facilitator"])
def test_the_services_refuse_the_same_people(scene, kind):
    thread = scene.start(scene.ash)
    user, _, _ = outsider(scene, kind)
    with pytest.raises(services.BoardError):
        services.thread_start(actor=user, group=scene.group, title="T", body="B")
    with pytest.raises(services.BoardError):
        services.post_reply(actor=user, thread=thread, body="B")
    assert Post.objects.count() == 1


def test_a_thread_number_of_another_group_is_a_404_here(scene):
    other = scene.start(scene.other_member)
    cedar = signed_in_client(scene.other_member.user)
    # Cedar's own thread, asked for through a group Cedar is not in.
    url = reverse("board:thread", kwargs={"slug": scene.group.slug, "number": other.number})
    assert cedar.get(url).status_code == 404
    ash = signed_in_client(scene.ash.user)
    assert ash.get(url).status_code == 404  # no thread 1 on this board yet
