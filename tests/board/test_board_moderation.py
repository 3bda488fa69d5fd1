"""The same moderation on the board as in meetings: a post reported citing a guideline
lands in the facilitators' queue beside meeting reports; a facilitator hides it (it reads
"Hidden by a facilitator.", and a hidden first post
hides its thread's title), or warns, mutes, suspends, removes its author through the
same services; a safety concern from a post goes to the facilitators' flags."""

import pytest
from django.urls import reverse

from audit.events import Action
from board.models import Post
from board.services import BoardError, post_reply
from groups.models import Membership, Status
from moderation import services as moderation_services
from moderation.models import ModerationAction, Report
from tests.board.conftest import events, signed_in_client, take_step

pytestmark = pytest.mark.django_db


def report_url(scene, thread, number=1):
    return reverse(
        "moderation:report_post",
        kwargs={"slug": scene.group.slug, "number": thread.number, "post_number": number},
    )


def test_a_reported_post_lands_in_the_facilitators_queue_and_is_hidden_from_there(scene):
    thread = scene.start(scene.ash, body="Something unkind")
    birch = signed_in_client(scene.birch.user)
    page = birch.get(reverse("board:thread", kwargs={"slug": scene.group.slug, "number": 1}))
    assert report_url(scene, thread) in page.content.decode()
    response = birch.post(report_url(scene, thread), {"guideline": 2, "note": "Not kind"})
    assert response.status_code == 302

    report = Report.objects.get()
    assert (report.post_id, report.reported, report.reporter) == (
        thread.posts.get().pk,
        scene.ash,
        scene.birch,
    )
    assert report.guideline_number == 2 and report.message_body == "Something unkind"
    (filed,) = events(Action.REPORT_FILED)
    assert filed.actor_id == scene.birch.user_id and "unkind" not in str(filed.extra)

    lantern = signed_in_client(scene.facilitator.user)
    dashboard = lantern.get(reverse("moderation:group", kwargs={"slug": scene.group.slug}))
    assert "Board post by Ash" in dashboard.content.decode()
    report_page = reverse(
        "moderation:report", kwargs={"slug": scene.group.slug, "report_id": report.pk}
    )
    assert "Something unkind" in lantern.get(report_page).content.decode()
    resolved = lantern.post(report_page, {"hide_message": "on", "action": "none", "note": "Rule 2"})
    assert resolved.status_code == 302

    post = Post.objects.get()
    assert post.hidden_at is not None and post.hidden_by == scene.facilitator
    (step,) = ModerationAction.objects.all()
    assert step.post == post and step.membership == scene.ash and step.report == report
    board = reverse("board:index", kwargs={"slug": scene.group.slug})
    for someone in (scene.ash, scene.birch, scene.facilitator):
        client = signed_in_client(someone.user)
        seen = client.get(reverse("board:thread", kwargs={"slug": scene.group.slug, "number": 1}))
        assert b"Hidden by a facilitator." in seen.content
        assert b"Something unkind" not in seen.content
        # It started the thread: its title (the post's headline) is hidden with it, on the
        # thread's page (heading and window title) and in the board's list.
        assert b"A hard night" not in seen.content
        assert b"<h1>Hidden by a facilitator</h1>" in seen.content
        listed = client.get(board).content
        assert b"A hard night" not in listed and b"Hidden by a facilitator" in listed
    # The step reads as what was hidden: a board post, not a meeting's message.
    assert "Board post hidden" in lantern.get(report_page).content.decode()
    log = lantern.get(reverse("moderation:log", kwargs={"slug": scene.group.slug}))
    assert "Lantern: Board post hidden — " in log.content.decode()
    about_me = signed_in_client(scene.ash.user).get(reverse("moderation:about_me"))
    assert "Board post hidden" in about_me.content.decode()
    assert "Message hidden" not in about_me.content.decode()
    # The copy in the report goes once it is resolved.
    report.refresh_from_db()
    assert report.message_body is None


def test_a_hidden_reply_leaves_the_threads_title(scene):
    thread = scene.start(scene.ash, title="Still readable")
    reply = post_reply(actor=scene.birch.user, thread=thread, body="Unkind reply")
    moderation_services.post_hide(post=reply, actor=scene.facilitator.user, guideline_number=1)
    page = signed_in_client(scene.ash.user).get(
        reverse("board:thread", kwargs={"slug": scene.group.slug, "number": thread.number})
    )
    assert b"<h1>Still readable</h1>" in page.content
    assert b"Unkind reply" not in page.content and b"Hidden by a facilitator." in page.content


def test_a_mute_from_a_board_report_stops_the_author_posting(scene):
    thread = scene.start(scene.ash, body="Something unkind")
    report = moderation_services.post_report_file(
        actor=scene.birch.user, post=thread.posts.get(), guideline_number=2
    )
    moderation_services.report_resolve(
        report=report, actor=scene.facilitator.user, action="mute", minutes=60
    )
    assert Membership.objects.get(pk=scene.ash.pk).status == Status.MUTED
    with pytest.raises(BoardError) as refused:
        post_reply(actor=scene.ash.user, thread=thread, body="Again")
    assert refused.value.code == "muted"


@pytest.mark.parametrize("step", ["suspend", "remove"])
def test_suspending_or_removing_closes_the_board(scene, step):
    thread = scene.start(scene.birch)
    take_step(scene, scene.ash, step, **({"minutes": 60} if step == "suspend" else {}))
    ash = signed_in_client(scene.ash.user)
    response = ash.get(reverse("board:thread", kwargs={"slug": scene.group.slug, "number": 1}))
    assert response.status_code in (403, 404) and b"I could not sleep." not in response.content
    with pytest.raises(BoardError):
        post_reply(actor=scene.ash.user, thread=thread, body="Hi")


def test_reporting_is_refused_to_outsiders_and_for_ones_own_post(scene):
    thread = scene.start(scene.ash)
    for someone in (scene.other_member, scene.other_facilitator):
        client = signed_in_client(someone.user)
        assert client.get(report_url(scene, thread)).status_code == 404
        assert client.post(report_url(scene, thread), {"guideline": 1}).status_code == 404
    own = signed_in_client(scene.ash.user).post(report_url(scene, thread), {"guideline": 1})
    assert b"your own post" in own.content
    with pytest.raises(moderation_services.ModerationError):
        moderation_services.post_report_file(
            actor=scene.other_member.user, post=thread.posts.get(), guideline_number=1
        )
    assert not Report.objects.exists()


def test_a_post_is_reported_once_per_member_and_a_bad_rule_rerenders(scene):
    thread = scene.start(scene.ash)
    birch = signed_in_client(scene.birch.user)
    bad = birch.post(report_url(scene, thread), {"guideline": 99})
    assert bad.status_code == 200 and b"errorlist" in bad.content
    # None chosen: said in plain words (not "This field is required.").
    empty = birch.post(report_url(scene, thread), {"note": "Unkind"}).content.decode()
    assert "Choose the guideline it breaks." in empty and "field is required" not in empty
    birch.post(report_url(scene, thread), {"guideline": 1})
    again = birch.post(report_url(scene, thread), {"guideline": 1})
    assert b"already reported" in again.content
    assert Report.objects.count() == 1


def test_only_facilitators_hide_posts(scene):
    thread = scene.start(scene.ash)
    for someone in (scene.birch, scene.other_facilitator):
        with pytest.raises(moderation_services.ModerationError):
            moderation_services.post_hide(
                post=thread.posts.get(), actor=someone.user, guideline_number=1
            )
    assert Post.objects.get().hidden_at is None


def test_a_safety_concern_from_a_post_names_its_author(scene):
    thread = scene.start(scene.ash)
    birch = signed_in_client(scene.birch.user)
    report_page = birch.get(report_url(scene, thread)).content.decode()
    flag_url = reverse("moderation:raise_flag", kwargs={"slug": scene.group.slug})
    assert f"{flag_url}?about={scene.ash.pk}" in report_page
    form = birch.get(f"{flag_url}?about={scene.ash.pk}").content.decode()
    assert f'value="{scene.ash.pk}" selected' in form or f'value="{scene.ash.pk}" checked' in form
    birch.post(flag_url, {"about": scene.ash.pk, "note": "Worried after their post."})
    (raised,) = events(Action.SAFETY_FLAG_RAISED)
    assert raised.actor_id == scene.birch.user_id


def test_the_hide_service_itself_refuses_a_deleted_or_an_already_hidden_post(scene):
    # The thread's page guards this too; the service must not rely on it (a second
    # facilitator at the same moment, a report resolved with "hide" afterwards).
    from board.services import post_delete

    thread = scene.start(scene.ash, body="Something unkind")
    reply = post_reply(actor=scene.birch.user, thread=thread, body="Gone soon")
    post_delete(actor=scene.birch.user, post=reply)
    with pytest.raises(moderation_services.ModerationError) as refused:
        moderation_services.post_hide(post=reply, actor=scene.facilitator.user, guideline_number=1)
    assert refused.value.code == "post_gone"
    assert Post.objects.get(pk=reply.pk).hidden_at is None

    first = thread.posts.get(number=1)
    moderation_services.post_hide(post=first, actor=scene.facilitator.user, guideline_number=1)
    with pytest.raises(moderation_services.ModerationError) as refused:
        moderation_services.post_hide(post=first, actor=scene.facilitator.user, guideline_number=2)
    assert refused.value.code == "already_hidden"
    # One step about the author and one audit row, not two.
    assert ModerationAction.objects.count() == 1
    assert len(events(Action.MODERATION_ACTION_TAKEN)) == 1
