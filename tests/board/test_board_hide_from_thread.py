"""A facilitator hides a post straight from its thread, as "Hide" in a meeting room: no
report is needed first. The author reads the step with its rule; a member reporting the
same post twice is told they already did instead of filling the form again."""

import pytest
from django.urls import reverse

from audit.events import Action
from board.models import Post
from moderation.models import ActionKind, ModerationAction, Report
from tests.board.conftest import events, signed_in_client

pytestmark = pytest.mark.django_db


def hide_url(scene, thread, number=1):
    return reverse(
        "moderation:hide_post",
        kwargs={"slug": scene.group.slug, "number": thread.number, "post_number": number},
    )


def thread_url(scene, thread):
    return reverse("board:thread", kwargs={"slug": scene.group.slug, "number": thread.number})


def test_a_facilitator_hides_a_post_from_its_thread_citing_a_rule(scene):
    thread = scene.start(scene.ash, body="Something unkind")
    lantern = signed_in_client(scene.facilitator.user)
    page = lantern.get(thread_url(scene, thread)).content.decode()
    assert hide_url(scene, thread) in page  # "Hide this post", beside "Report this post"

    form = lantern.get(hide_url(scene, thread))
    assert form.status_code == 200
    assert "Something unkind" in form.content.decode()
    response = lantern.post(hide_url(scene, thread), {"guideline": 2, "reason": "Be kind."})
    assert response.status_code == 302
    assert response["Location"] == f"{thread_url(scene, thread)}#post-1"

    post = Post.objects.get()
    assert post.hidden_at is not None and post.hidden_by == scene.facilitator
    (step,) = ModerationAction.objects.all()
    assert (step.kind, step.post, step.membership) == (
        ActionKind.HIDE_MESSAGE,
        post,
        scene.ash,
    )
    assert (step.guideline_number, step.reason, step.report) == (2, "Be kind.", None)
    (event,) = events(Action.MODERATION_ACTION_TAKEN)
    assert event.actor_id == scene.facilitator.user_id and event.subject_id == scene.ash.user_id
    assert "unkind" not in str(event.extra)

    shown = lantern.get(thread_url(scene, thread)).content.decode()
    assert "Hidden by a facilitator." in shown and "Something unkind" not in shown
    mine = signed_in_client(scene.ash.user).get("/moderation/about-me/").content.decode()
    assert "Board post hidden" in mine and "Be kind." in mine
    # Nothing is left to hide: the page says so and a second post changes nothing.
    again = lantern.post(hide_url(scene, thread), {"guideline": 2})
    assert "already hidden or deleted" in again.content.decode()
    assert ModerationAction.objects.count() == 1


def test_hiding_needs_a_rule_and_keeps_the_reason_typed(scene):
    thread = scene.start(scene.ash)
    lantern = signed_in_client(scene.facilitator.user)
    response = lantern.post(hide_url(scene, thread), {"reason": "Please keep it kind."})
    assert response.status_code == 200
    html = response.content.decode()
    assert "There is a problem" in html
    assert "Please keep it kind." in html
    assert Post.objects.get().hidden_at is None
    assert not ModerationAction.objects.exists()


def test_only_the_groups_facilitators_may_hide_and_members_see_no_hide_link(scene):
    thread = scene.start(scene.ash)
    for someone in (scene.birch, scene.other_member, scene.other_facilitator):
        client = signed_in_client(someone.user)
        assert client.get(hide_url(scene, thread)).status_code == 404
        assert client.post(hide_url(scene, thread), {"guideline": 1}).status_code == 404
    page = signed_in_client(scene.birch.user).get(thread_url(scene, thread)).content.decode()
    assert hide_url(scene, thread) not in page
    assert Post.objects.get().hidden_at is None
    assert events(Action.MODERATION_ACTION_TAKEN) == []


def test_a_member_who_already_reported_a_post_is_told_so_instead_of_the_form(scene):
    thread = scene.start(scene.ash)
    birch = signed_in_client(scene.birch.user)
    url = reverse(
        "moderation:report_post",
        kwargs={"slug": scene.group.slug, "number": thread.number, "post_number": 1},
    )
    birch.post(url, {"guideline": 1, "note": "Unkind"})
    page = birch.get(url).content.decode()
    assert "You already reported this post just now, citing rule 1." in page
    assert "Send the report" not in page
    assert Report.objects.count() == 1


def test_the_report_and_the_log_name_a_post_as_a_post(scene):
    thread = scene.start(scene.ash)
    birch = signed_in_client(scene.birch.user)
    birch.post(
        reverse(
            "moderation:report_post",
            kwargs={"slug": scene.group.slug, "number": thread.number, "post_number": 1},
        ),
        {"guideline": 1},
    )
    report = Report.objects.get()
    lantern = signed_in_client(scene.facilitator.user)
    page = lantern.get(
        reverse("moderation:report", kwargs={"slug": scene.group.slug, "report_id": report.pk})
    ).content.decode()
    assert "Hide the post" in page and "Hide the message" not in page
    log = lantern.get(reverse("moderation:log", kwargs={"slug": scene.group.slug}))
    assert "Message hidden or board post hidden" in log.content.decode()
