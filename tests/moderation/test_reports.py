"""Reports: a member reports a message from the room citing a guideline; facilitators see
it (the reporter only by pseudonym) with an encrypted copy of the message that outlives the
room's retention until the report is resolved."""

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.events import Action
from groups.models import Retention, Status
from meetings import services as meeting_services
from meetings.models import Message
from moderation import services
from moderation.models import ActionKind, ModerationAction, Report
from tests.moderation.conftest import (
    RULES,
    Socket,
    build_world,
    events,
    facilitator_cookie,
    fresh,
    member_client,
    member_cookie,
    post,
    raw_rows,
    run,
    text_of,
    verified_client,
)


def file_report(world, *, note="Please look at this.", rule=2):
    return services.report_file(
        actor=world.river.user, message=world.fern_message, guideline_number=rule, note=note
    )


# --- filing from the room ---------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_worker_connections")
async def test_after_a_reload_the_reporter_is_told_which_messages_they_reported():
    """The message frames say ``reported`` to the member who reported it, and only to
    them, in the history, a replay and live (issue 21: "Report" came back after a reload)."""
    world = await run(build_world)
    async with Socket(world.path, await member_cookie(world.river)) as river:
        await river.send({"type": "history", "limit": 10})
        (first,) = [m for m in (await river.expect("history"))["messages"] if m["seq"] == 1]
        assert first["reported"] is False
        await river.send({"type": "report", "seq": 1, "guideline": 2})
        await river.expect("reported")
        await river.send({"type": "resume", "after_seq": 0})
        replayed = await river.expect("message")
        assert (replayed["seq"], replayed["reported"]) == (1, True)
    # A new socket (a reload) is told too, and someone else is not.
    async with (
        Socket(world.path, await member_cookie(world.river)) as river,
        Socket(world.path, await member_cookie(world.fern)) as fern,
    ):
        await river.send({"type": "history", "limit": 10})
        by_seq = {m["seq"]: m["reported"] for m in (await river.expect("history"))["messages"]}
        assert by_seq[1] is True and not any(v for seq, v in by_seq.items() if seq != 1)
        await fern.send({"type": "history", "limit": 10})
        assert not any(m["reported"] for m in (await fern.expect("history"))["messages"])


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_worker_connections")
async def test_it_files_a_report_from_the_room_citing_a_guideline():
    world = await run(build_world)
    async with (
        Socket(world.path, await member_cookie(world.river)) as river,
        Socket(world.path, await member_cookie(world.fern)) as fern,
    ):
        assert river.connected
        assert river.hello["guidelines"] == [
            {"number": n, "text": text} for n, text in enumerate(RULES, start=1)
        ]
        await river.send({"type": "report", "seq": 1, "guideline": 2, "note": "Cruel words."})
        assert await river.expect("reported") == {"type": "reported", "seq": 1}
        # Nobody else in the room hears of it, least of all the author.
        await fern.expect_quiet()

    report = await run(lambda: Report.objects.select_related("reporter", "reported").get())
    assert report.group_id == world.group.pk
    assert report.meeting_id == world.meeting.pk
    assert report.message_id == world.fern_message.pk
    assert report.message_seq == 1
    assert report.reporter.pk == world.river.pk
    assert report.reported.pk == world.fern.pk
    assert (report.guideline_number, report.guideline_text) == (2, RULES[1])
    assert report.note == "Cruel words."
    assert report.message_body == "Honestly, you are all pathetic."
    assert report.status == Report.Status.OPEN

    (event,) = await run(events, Action.REPORT_FILED)
    assert event.actor_id == world.river.user_id
    assert event.target_type == "moderation.report" and event.target_id == str(report.pk)
    assert event.group_id == world.group.pk
    assert event.extra == {"rule": 2}  # ids and numbers only, never the note or the message


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_worker_connections")
async def test_it_refuses_a_report_of_ones_own_message():
    world = await run(build_world)
    async with Socket(world.path, await member_cookie(world.river)) as river:
        await river.send({"type": "report", "seq": 2, "guideline": 1})
        error = await river.expect_error("report_refused")
        assert "own message" in error["message"]
        await river.still_usable()
    assert await run(Report.objects.count) == 0
    assert await run(events, Action.REPORT_FILED) == []


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_worker_connections")
async def test_it_refuses_a_second_report_of_the_same_message_by_the_same_member():
    world = await run(build_world)
    async with Socket(world.path, await member_cookie(world.river)) as river:
        await river.send({"type": "report", "seq": 1, "guideline": 2})
        await river.expect("reported")
        await river.send({"type": "report", "seq": 1, "guideline": 3, "note": "again"})
        error = await river.expect_error("report_refused")
        assert "already reported" in error["message"]
        await river.still_usable()
    assert await run(Report.objects.count) == 1
    assert len(await run(events, Action.REPORT_FILED)) == 1
    # Someone else may still report the same message.
    # (Harbour facilitates another group, so their session is 2FA-verified.)
    async with Socket(world.path, await facilitator_cookie(world.harbour)) as harbour:
        assert harbour.connected
        await harbour.send({"type": "report", "seq": 1, "guideline": 2})
        await harbour.expect("reported")
    assert await run(Report.objects.count) == 2


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_worker_connections")
@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ({"type": "report", "guideline": 2}, "invalid_report"),
        ({"type": "report", "seq": "1", "guideline": 2}, "invalid_report"),
        ({"type": "report", "seq": 1}, "invalid_report"),
        ({"type": "report", "seq": 1, "guideline": True}, "invalid_report"),
        ({"type": "report", "seq": -1, "guideline": 2}, "invalid_report"),
        ({"type": "report", "seq": 1, "guideline": 2, "note": 5}, "invalid_report"),
        ({"type": "report", "seq": 1, "guideline": 2, "note": "x" * 1001}, "invalid_report"),
        ({"type": "report", "seq": 1, "guideline": 9}, "report_refused"),  # no rule 9
        ({"type": "report", "seq": 99, "guideline": 2}, "report_refused"),  # no such message
    ],
)
async def test_it_refuses_an_incomplete_report(frame, code):
    world = await run(build_world)
    async with Socket(world.path, await member_cookie(world.river)) as river:
        await river.send(frame)
        await river.expect_error(code)
        await river.still_usable()
    assert await run(Report.objects.count) == 0


def test_a_report_cannot_cite_a_message_of_another_group(world):
    other_meeting_message = post(
        meeting_services.meeting_schedule(
            group=world.other_group,
            actor=world.other_facilitator.user,
            title="Morning",
            starts_at=timezone.now() - timedelta(minutes=5),
            ends_at=timezone.now() + timedelta(hours=1),
        )[0],
        world.stranger,
        "Hello from the other group.",
    )
    with pytest.raises(services.ModerationError):
        services.report_file(
            actor=world.river.user, message=other_meeting_message, guideline_number=1
        )
    assert Report.objects.count() == 0


# --- what facilitators see --------------------------------------------------------------------


def test_facilitators_see_the_reporter_only_by_pseudonym(world, fac):
    report = file_report(world, note="It felt aimed at me.")

    dashboard = fac.get(f"/moderation/{world.slug}/")
    assert dashboard.status_code == 200
    page = text_of(dashboard)
    assert "Open reports (1)" in page
    assert "Message by Fern, rule 2, reported by River" in page
    assert f"/moderation/{world.slug}/reports/{report.pk}/" in dashboard.content.decode()

    detail = fac.get(f"/moderation/{world.slug}/reports/{report.pk}/")
    assert detail.status_code == 200
    page = text_of(detail)
    assert "Report about a message by Fern" in page
    assert "Reported by River" in page
    assert f"rule 2: {RULES[1]}" in page
    assert "Honestly, you are all pathetic." in page
    assert "It felt aimed at me." in page
    for response in (dashboard, detail):
        content = response.content.decode()
        for private in ("river-login-handle", "river.private@example.org", "fern-login-handle"):
            assert private not in content


def test_the_copy_of_the_message_is_encrypted_at_rest(world):
    file_report(world, note="A private note about it.")
    stored = raw_rows("moderation_report")
    assert "pathetic" not in stored
    assert "private note" not in stored


def test_the_reported_member_never_learns_who_reported_them(world, fac):
    report = file_report(world)
    fac.post(
        f"/moderation/{world.slug}/reports/{report.pk}/",
        {"action": "warn", "note": "Please be gentle here.", "duration": ""},
    )
    page = member_client(world.fern.user).get("/moderation/about-me/")
    assert "Please be gentle here." in text_of(page)
    assert "River" not in text_of(page)
    activity = member_client(world.fern.user).get("/account/activity/")
    assert "River" not in text_of(activity)


# --- the copy outlives the room's retention until resolved ------------------------------------


@pytest.fixture
def wiping_world(db):
    return build_world(retention=Retention.MEETING_END)


def test_the_reported_message_survives_the_room_being_wiped_until_resolved(wiping_world):
    world = wiping_world
    report = file_report(world)
    meeting_services.meeting_close(meeting=world.meeting, actor=world.facilitator.user)

    assert not Message.objects.filter(meeting=world.meeting).exists()
    report = fresh(report)
    assert report.message_id is None
    assert report.message_body == "Honestly, you are all pathetic."
    assert report.reported_id == world.fern.pk

    fac = verified_client(world.facilitator.user)
    url = f"/moderation/{world.slug}/reports/{report.pk}/"
    assert "Honestly, you are all pathetic." in text_of(fac.get(url))

    # Hiding a message that no longer exists is refused; other outcomes still work.
    response = fac.post(url, {"hide_message": "on", "action": "none", "note": "", "duration": ""})
    assert response.status_code == 200
    assert "no longer exists" in text_of(response)
    assert fresh(report).status == Report.Status.OPEN

    response = fac.post(url, {"action": "warn", "note": "Rule 2, please.", "duration": ""})
    assert response.status_code == 302
    report = fresh(report)
    assert report.status == Report.Status.RESOLVED
    assert report.message_body is None
    page = text_of(fac.get(url))
    assert "pathetic" not in page
    assert "Resolved" in page
    assert "pathetic" not in raw_rows("moderation_report")


def test_resolving_drops_the_copy_even_when_the_message_is_still_kept(world, fac):
    report = file_report(world)
    fac.post(
        f"/moderation/{world.slug}/reports/{report.pk}/",
        {"action": "none", "note": "Context made it fine.", "duration": ""},
    )
    report = fresh(report)
    assert report.message_body is None
    assert report.message_id == world.fern_message.pk  # the room's own policy still applies


# --- resolving --------------------------------------------------------------------------------


def test_a_facilitator_resolves_a_report_with_no_action(world, fac):
    report = file_report(world)
    response = fac.post(
        f"/moderation/{world.slug}/reports/{report.pk}/",
        {"action": "none", "note": "Talked it through.", "duration": ""},
    )
    assert response.status_code == 302
    assert response["Location"] == f"/moderation/{world.slug}/"
    report = fresh(report)
    assert report.status == Report.Status.RESOLVED
    assert report.resolution == "none"
    assert report.resolution_note == "Talked it through."
    assert report.resolved_by_id == world.facilitator.pk
    assert report.resolved_at is not None
    assert not ModerationAction.objects.exists()
    assert fresh(world.fern).status == Status.ACTIVE
    (event,) = events(Action.REPORT_RESOLVED)
    assert event.actor_id == world.facilitator.user_id
    assert event.extra == {"resolution": "none"}
    assert "Open reports (0)" in text_of(fac.get(f"/moderation/{world.slug}/"))


def test_a_report_is_resolved_once(world, fac):
    report = file_report(world)
    url = f"/moderation/{world.slug}/reports/{report.pk}/"
    fac.post(url, {"action": "none", "note": "", "duration": ""})
    response = fac.post(url, {"action": "mute", "note": "", "duration": "10"})
    assert response.status_code == 200
    assert "Resolved" in text_of(response)
    assert fresh(report).resolution == "none"
    assert fresh(world.fern).status == Status.ACTIVE
    assert len(events(Action.REPORT_RESOLVED)) == 1


def test_resolving_with_a_mute_mutes_the_author_citing_the_reported_rule(world, fac):
    report = file_report(world)
    before = timezone.now()
    response = fac.post(
        f"/moderation/{world.slug}/reports/{report.pk}/",
        {"action": "mute", "note": "Cooling off for a bit.", "duration": "10"},
    )
    assert response.status_code == 302
    fern = fresh(world.fern)
    assert fern.status == Status.MUTED
    assert before + timedelta(minutes=10) <= fern.muted_until
    assert fern.muted_until <= timezone.now() + timedelta(minutes=10)
    (action,) = ModerationAction.objects.all()
    assert action.kind == ActionKind.MUTE
    assert action.report_id == report.pk
    assert (action.guideline_number, action.guideline_text) == (2, RULES[1])
    assert action.reason == "Cooling off for a bit."
    assert fresh(report).resolution == "mute"
    (taken,) = events(Action.MODERATION_ACTION_TAKEN)
    assert taken.subject_id == world.fern.user_id
    assert taken.extra == {"kind": "mute", "rule": 2, "minutes": 10}


def test_resolving_by_hiding_the_message(world, fac):
    report = file_report(world)
    fac.post(
        f"/moderation/{world.slug}/reports/{report.pk}/",
        {"hide_message": "on", "action": "none", "note": "Not kind.", "duration": ""},
    )
    message = fresh(world.fern_message)
    assert message.hidden_at is not None
    assert message.hidden_by_id == world.facilitator.pk
    (action,) = ModerationAction.objects.all()
    assert (action.kind, action.membership_id, action.message_id) == (
        ActionKind.HIDE_MESSAGE,
        world.fern.pk,
        world.fern_message.pk,
    )
    assert fresh(report).status == Report.Status.RESOLVED


def test_one_decision_hides_the_message_and_mutes_its_author(world, fac):
    report = file_report(world)
    response = fac.post(
        f"/moderation/{world.slug}/reports/{report.pk}/",
        {"hide_message": "on", "action": "mute", "note": "Not kind.", "duration": "60"},
    )
    assert response.status_code == 302
    assert fresh(world.fern_message).hidden_at is not None
    fern = fresh(world.fern)
    assert fern.status == Status.MUTED and fern.muted_until is not None
    kinds = sorted(ModerationAction.objects.values_list("kind", flat=True))
    assert kinds == [ActionKind.HIDE_MESSAGE, ActionKind.MUTE]
    report = fresh(report)
    assert report.resolution == "hide_message+mute"
    assert report.resolution_label == "Message hidden and muted"
    (event,) = events(Action.REPORT_RESOLVED)
    assert event.extra == {"resolution": "hide_message+mute"}
    assert len(events(Action.MODERATION_ACTION_TAKEN)) == 2  # the hiding and the mute


def test_hiding_and_acting_is_all_or_nothing(world, fac):
    report = file_report(world)
    # A suspension with no end date is refused after the message would have been hidden.
    response = fac.post(
        f"/moderation/{world.slug}/reports/{report.pk}/",
        {"hide_message": "on", "action": "suspend", "note": "", "duration": ""},
    )
    assert response.status_code == 200
    assert fresh(world.fern_message).hidden_at is None
    assert not ModerationAction.objects.exists()
    assert fresh(report).status == Report.Status.OPEN


def test_the_length_of_a_mute_defaults_to_an_hour_not_until_lifted(world, fac):
    report = file_report(world)
    page = fac.get(f"/moderation/{world.slug}/reports/{report.pk}/").content.decode()
    assert '<option value="60" selected>1 hour</option>' in page
    assert '<option value="" selected' not in page


def test_resolving_with_a_suspension_needs_a_duration(world, fac):
    report = file_report(world)
    url = f"/moderation/{world.slug}/reports/{report.pk}/"
    response = fac.post(url, {"action": "suspend", "note": "", "duration": ""})
    assert response.status_code == 200
    assert "needs an end date" in text_of(response)
    assert fresh(report).status == Report.Status.OPEN
    assert fresh(world.fern).status == Status.ACTIVE
    assert not ModerationAction.objects.exists()
    assert events(Action.REPORT_RESOLVED) == []


@pytest.mark.parametrize(
    "data",
    [
        {"action": "explode", "note": "", "duration": ""},
        {"action": "mute", "note": "", "duration": "7"},
        {"action": "mute", "note": "x" * 1001, "duration": ""},
        {},
    ],
)
def test_it_refuses_a_malformed_resolution(world, fac, data):
    report = file_report(world)
    response = fac.post(f"/moderation/{world.slug}/reports/{report.pk}/", data)
    assert response.status_code == 200
    assert fresh(report).status == Report.Status.OPEN
    assert fresh(world.fern).status == Status.ACTIVE


def test_what_members_wrote_is_shown_as_text_never_as_markup(world, fac):
    message = post(world.meeting, world.fern, '<script>alert("fern")</script><b>bold</b>')
    report = services.report_file(
        actor=world.river.user, message=message, guideline_number=2, note="<img src=x onerror=1>"
    )
    page = fac.get(f"/moderation/{world.slug}/reports/{report.pk}/").content.decode()
    assert "&lt;script&gt;alert(&quot;fern&quot;)&lt;/script&gt;&lt;b&gt;bold&lt;/b&gt;" in page
    assert "&lt;img src=x onerror=1&gt;" in page
    assert "<script>alert" not in page and "<img src=x" not in page


def test_a_length_without_a_step_about_the_author_is_refused(world):
    report = file_report(world)
    with pytest.raises(services.ModerationError) as refused:
        services.report_resolve(
            report=report, actor=world.facilitator.user, action="none", minutes=60
        )
    assert refused.value.code == "length_not_applicable"
    assert fresh(report).status == Report.Status.OPEN
