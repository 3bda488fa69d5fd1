"""Actions on a membership (warn, mute, unmute, suspend, remove, reinstate) and hiding a
message: each cites a guideline where it should, reaches the member's open sockets within
a second, is audited, shows in the group's moderation log and in the member's own
"notes from facilitators"."""

import re
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from audit.events import Action
from groups.models import Membership, Status
from meetings import services as meeting_services
from meetings.models import Message
from moderation import services
from moderation.models import ActionKind, ModerationAction
from tests.moderation.conftest import (
    CLOSE_MEMBERSHIP_CHANGED,
    CLOSE_NOT_ALLOWED,
    RULES,
    Socket,
    appoint,
    events,
    facilitator_cookie,
    fresh,
    give_place,
    make_group,
    make_person,
    member_client,
    member_cookie,
    run,
    schedule,
    text_of,
)


def member_url(world, membership=None):
    return f"/moderation/{world.slug}/members/{(membership or world.fern).pk}/"


def act(client, world, kind, *, rule="2", reason="", duration="", membership=None):
    return client.post(
        member_url(world, membership),
        {"kind": kind, "guideline": rule, "reason": reason, "duration": duration},
    )


# --- each step from the member page -----------------------------------------------------------


def test_a_warning_cites_a_rule_and_the_member_reads_it_with_the_reason(world, fac):
    response = act(fac, world, "warn", reason="Please speak from your own experience.")
    assert response.status_code == 302
    assert response["Location"] == member_url(world)

    (action,) = ModerationAction.objects.all()
    assert action.kind == ActionKind.WARN
    assert (action.membership_id, action.actor_id) == (world.fern.pk, world.facilitator.pk)
    assert (action.guideline_number, action.guideline_text) == (2, RULES[1])
    assert action.reason == "Please speak from your own experience."
    assert fresh(world.fern).status == Status.ACTIVE

    (event,) = events(Action.MODERATION_ACTION_TAKEN)
    assert event.actor_id == world.facilitator.user_id
    assert event.subject_id == world.fern.user_id
    assert event.group_id == world.group.pk
    assert event.target_type == "moderation.moderationaction"
    assert event.target_id == str(action.pk)
    assert event.extra == {"kind": "warn", "rule": 2, "minutes": None}

    page = text_of(fac.get(member_url(world)))
    assert "Warning — rule 2: Please speak from your own experience. (Lantern)" in page

    fern_client = member_client(world.fern.user)
    assert "/moderation/about-me/" in fern_client.get("/account/").content.decode()
    mine = text_of(fern_client.get("/moderation/about-me/"))
    assert "Evening Grief Circle (as Fern): Warning" in mine
    assert f"Rule 2: {RULES[1]}" in mine
    assert "Reason: Please speak from your own experience." in mine
    # The member's privacy-centre activity says a step was taken, not by whom.
    activity = text_of(member_client(world.fern.user).get("/account/activity/"))
    assert "took a moderation step about you" in activity
    assert "Lantern" not in activity


def test_a_length_chosen_beside_a_warning_or_a_removal_is_not_kept(world, fac):
    """The forms offer "For" beside every step, with 1 hour chosen; only a mute or a
    suspension lasts, so a warning must not read "Warning until …" to the member."""
    act(fac, world, "warn", duration="60")
    act(fac, world, "remove", duration="60")
    assert [(a.kind, a.until) for a in ModerationAction.objects.order_by("pk")] == [
        (ActionKind.WARN, None),
        (ActionKind.REMOVE, None),
    ]
    assert [e.extra["minutes"] for e in events(Action.MODERATION_ACTION_TAKEN)] == [None, None]
    mine = text_of(member_client(world.fern.user).get("/moderation/about-me/"))
    assert "Warning" in mine
    assert "until" not in mine


def test_the_dashboard_counts_warnings_per_member(world, fac):
    act(fac, world, "warn")
    act(fac, world, "warn", rule="3")
    row = next(
        line
        for line in fac.get(f"/moderation/{world.slug}/members/").content.decode().split("<tr>")
        if f"members/{world.fern.pk}/" in line
    )
    assert "<td>2</td>" in row


def test_a_step_that_needs_a_rule_is_refused_without_one(world, fac):
    for kind in ("warn", "mute", "suspend", "remove"):
        response = act(fac, world, kind, rule="", duration="60")
        assert response.status_code == 200
        assert "Please choose the guideline" in text_of(response)
    assert not ModerationAction.objects.exists()
    assert fresh(world.fern).status == Status.ACTIVE
    assert events(Action.MODERATION_ACTION_TAKEN) == []


@pytest.mark.parametrize(
    "data",
    [
        {"kind": "explode", "guideline": "2", "reason": "", "duration": ""},
        {"kind": "hide_message", "guideline": "2", "reason": "", "duration": ""},
        {"kind": "warn", "guideline": "9", "reason": "", "duration": ""},
        {"kind": "mute", "guideline": "2", "reason": "", "duration": "5"},
        {"kind": "warn", "guideline": "2", "reason": "x" * 1001, "duration": ""},
    ],
)
def test_it_refuses_a_malformed_step(world, fac, data):
    response = fac.post(member_url(world), data)
    assert response.status_code == 200
    assert not ModerationAction.objects.exists()
    assert fresh(world.fern).status == Status.ACTIVE


def test_a_mute_for_ten_minutes_and_an_unmute(world, fac):
    before = timezone.now()
    act(fac, world, "mute", reason="Take a breather.", duration="10")
    fern = fresh(world.fern)
    assert fern.status == Status.MUTED
    assert before + timedelta(minutes=10) <= fern.muted_until
    assert fern.muted_until <= timezone.now() + timedelta(minutes=10)
    (mute,) = ModerationAction.objects.all()
    assert mute.until == fern.muted_until

    members = text_of(fac.get(f"/moderation/{world.slug}/members/"))
    assert "Fern Muted until" in members
    mine = text_of(member_client(world.fern.user).get("/moderation/about-me/"))
    assert "Muted until" in mine and "Reason: Take a breather." in mine

    response = act(fac, world, "unmute", rule="")
    assert response.status_code == 302
    fern = fresh(world.fern)
    assert (fern.status, fern.muted_until) == (Status.ACTIVE, None)
    kinds = [e.extra["kind"] for e in events(Action.MODERATION_ACTION_TAKEN)]
    assert kinds == ["mute", "unmute"]

    response = act(fac, world, "unmute", rule="")
    assert "not muted" in text_of(response)


def test_a_mute_without_a_duration_lasts_until_lifted(world, fac):
    act(fac, world, "mute")
    fern = fresh(world.fern)
    assert (fern.status, fern.muted_until) == (Status.MUTED, None)
    assert fern.effective_status(timezone.now() + timedelta(days=365)) == Status.MUTED


def test_a_suspension_needs_an_end_date(world, fac):
    response = act(fac, world, "suspend", duration="")
    assert "needs an end date" in text_of(response)
    assert fresh(world.fern).status == Status.ACTIVE

    act(fac, world, "suspend", reason="A week away.", duration="10080")
    fern = fresh(world.fern)
    assert fern.status == Status.SUSPENDED
    assert fern.suspended_until > timezone.now() + timedelta(days=6)


def test_removing_ends_the_membership_and_reinstating_restores_it(world, fac):
    act(fac, world, "remove", rule="1", reason="Shared a member's story outside.")
    fern = fresh(world.fern)
    assert fern.status == Status.REMOVED
    # Fern is no longer listed, and may no longer see the group.
    members = fac.get(f"/moderation/{world.slug}/members/").content.decode()
    assert f"members/{world.fern.pk}/" not in members
    fern_client = member_client(world.fern.user)
    assert fern_client.get(f"/groups/{world.slug}/home/").status_code == 404
    # ...but still reads what was done and why.
    mine = text_of(fern_client.get("/moderation/about-me/"))
    assert "Removed from the group" in mine
    assert "Reason: Shared a member's story outside." in mine

    response = act(fac, world, "remove")
    assert "no longer in the group" in text_of(response)

    act(fac, world, "reinstate", rule="")
    assert fresh(world.fern).status == Status.ACTIVE
    assert fern_client.get(f"/groups/{world.slug}/home/").status_code == 200
    response = act(fac, world, "reinstate", rule="")
    assert "nothing to reinstate" in text_of(response)


def test_a_facilitator_takes_no_step_about_themselves(world, fac):
    response = act(fac, world, "warn", membership=world.facilitator)
    assert "about yourself" in text_of(response)
    assert not ModerationAction.objects.exists()


def test_another_facilitator_cannot_be_muted_suspended_or_removed(world, fac):
    co = appoint(world.group, make_person("co-login-handle"), "Ash", actor=world.admin)
    for kind in ("mute", "suspend", "remove"):
        response = act(fac, world, kind, duration="60", membership=co)
        assert "an admin can change their role first" in text_of(response)
        assert fresh(co).status == Status.ACTIVE
    # A warning is fine.
    assert act(fac, world, "warn", membership=co).status_code == 302


def test_the_member_page_shows_history_and_links_to_break_glass(world, fac):
    act(fac, world, "warn", reason="First note.")
    page = fac.get(member_url(world))
    text = text_of(page)
    assert "Fern" in text and "Member · Active" in text
    assert "First note." in text
    assert f"/moderation/{world.slug}/members/{world.fern.pk}/reveal/" in page.content.decode()
    assert "fern-login-handle" not in page.content.decode()


def test_the_step_list_offers_every_step_as_something_to_do(world, fac):
    html = fac.get(member_url(world)).content.decode()
    offered = dict(re.findall(r'<option value="(\w+)"[^>]*>([^<]+)</option>', html))
    steps = {k: v for k, v in offered.items() if k in ActionKind.values}
    # Hiding a message is done on the message itself (room or report), not here.
    assert set(steps) == set(ActionKind.values) - {ActionKind.HIDE_MESSAGE}
    assert steps["mute"].startswith("Mute") and steps["remove"] == "Remove from the group"


def test_a_message_removed_with_its_authors_account_is_not_hidden_about_the_facilitator(world, fac):
    # What deleting an account does to the person's messages: "[removed]", no body.
    meeting_services.messages_remove_for_user(user=world.fern.user)
    with pytest.raises(services.ModerationError, match="removed with its author"):
        services.message_hide(
            message=world.fern_message, actor=world.facilitator.user, guideline_number=2
        )
    assert not ModerationAction.objects.exists()
    assert events(Action.MODERATION_ACTION_TAKEN) == []
    # Nothing "about" the facilitator appeared in their own notes.
    mine = text_of(fac.get("/moderation/about-me/"))
    assert "no facilitator has taken any step about you" in mine


def test_a_mute_longer_than_a_year_is_refused(world):
    with pytest.raises(services.ModerationError, match="too long"):
        services.action_take(
            membership=world.fern,
            actor=world.facilitator.user,
            kind="mute",
            guideline_number=2,
            minutes=10**12,  # past the end of the calendar
        )
    assert fresh(world.fern).status == Status.ACTIVE


# --- what members read about themselves -------------------------------------------------------


def test_about_me_lists_only_ones_own_steps_in_every_group(world, fac):
    act(fac, world, "warn", reason="For Fern only.")
    act(fac, world, "warn", reason="For River only.", membership=world.river)
    second = make_group(world.admin, "Carers Evening")
    give_place(second, world.fern.user, "Willow")
    second_fac = appoint(second, make_person("second-fac"), "Oak", actor=world.admin)
    services.action_take(
        membership=Membership.objects.get(group=second, user=world.fern.user),
        actor=second_fac.user,
        kind="warn",
        guideline_number=1,
        reason="In the carers' group.",
    )

    mine = text_of(member_client(world.fern.user).get("/moderation/about-me/"))
    assert "For Fern only." in mine
    assert "Carers Evening (as Willow): Warning" in mine
    assert "In the carers' group." in mine
    assert "For River only." not in mine

    nobody = text_of(member_client(world.stranger.user).get("/moderation/about-me/"))
    assert "no facilitator has taken any step about you" in nobody


# --- every step is audited and shown in the group's log ---------------------------------------


def test_every_step_is_audited_and_shown_in_the_moderation_log(world, fac):
    steps = [
        ("warn", "2", ""),
        ("mute", "2", "10"),
        ("unmute", "", ""),
        ("suspend", "3", "1440"),
        ("reinstate", "", ""),
        ("remove", "1", ""),
        ("reinstate", "", ""),
    ]
    for kind, rule, duration in steps:
        assert act(fac, world, kind, rule=rule, duration=duration).status_code == 302, kind
    services.message_hide(
        message=world.fern_message, actor=world.facilitator.user, guideline_number=2
    )

    taken = events(Action.MODERATION_ACTION_TAKEN)
    assert [e.extra["kind"] for e in taken] == [k for k, _, _ in steps] + ["hide_message"]
    assert {e.subject_id for e in taken} == {world.fern.user_id}
    assert {e.actor_id for e in taken} == {world.facilitator.user_id}
    assert {e.group_id for e in taken} == {world.group.pk}
    actions = list(ModerationAction.objects.order_by("created_at", "pk"))
    assert [e.target_id for e in taken] == [str(a.pk) for a in actions]

    log = text_of(fac.get(f"/moderation/{world.slug}/log/")).split("Moderation log", 1)[1]
    for label in (
        "Lantern: Warning — Fern (rule 2)",
        "Lantern: Muted — Fern (rule 2)",
        "Lantern: Unmuted — Fern",
        "Lantern: Suspended — Fern (rule 3)",
        "Lantern: Reinstated — Fern",
        "Lantern: Removed from the group — Fern (rule 1)",
        "Lantern: Message hidden — Fern (rule 2)",
    ):
        assert label in log, label
    assert log.count("Lantern:") == len(steps) + 1
    # The log names pseudonyms only, never what was said.
    assert "pathetic" not in log
    # Audit rows hold ids and kinds, never reasons; the hash chain is intact.
    assert all("reason" not in e.extra for e in taken)
    out = StringIO()
    call_command("verify_audit_log", verbosity=0, stdout=out)
    assert "Audit log intact" in out.getvalue()


# --- live enforcement on open sockets ---------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_worker_connections")
async def test_a_mute_reaches_the_open_room_and_the_server_refuses_sends(world, fac):
    async with (
        Socket(world.path, await member_cookie(world.fern)) as fern,
        Socket(world.path, await member_cookie(world.river)) as river,
    ):
        assert fern.hello["you"]["can_send"] is True
        await run(act, fac, world, "mute", reason="Cool down.", duration="10")
        status = await fern.expect("status", timeout=1)
        assert status.pop("muted")["reason"] == "Cool down."  # why, and until when
        assert status == {"type": "status", "can_send": False, "pseudonym": "Fern"}
        await river.expect_quiet()

        # Not just the page: the server refuses what a muted member sends.
        await fern.post("I will say it anyway.", "fern-muted-0001")
        error = await fern.expect_error("muted")
        assert error["client_id"] == "fern-muted-0001"
        assert "muted" in error["message"]
        assert not await run(Message.objects.filter(client_id="fern-muted-0001").exists)
        await fern.still_usable()

        # A muted member still reads the room.
        await river.send_and_ack("Are you OK, Fern?", "river-msg-0100")
        message = await fern.expect("message")
        assert message["body"] == "Are you OK, Fern?"

        await run(act, fac, world, "unmute", rule="")
        assert await fern.expect("status", timeout=1) == {
            "type": "status",
            "can_send": True,
            "pseudonym": "Fern",
            "muted": None,
        }
        await fern.send_and_ack("Sorry, everyone.", "fern-back-0001")


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_worker_connections")
async def test_a_muted_member_joins_read_only(world, fac):
    await run(act, fac, world, "mute", duration="60")
    async with Socket(world.path, await member_cookie(world.fern)) as fern:
        assert fern.connected is True
        assert fern.hello["you"]["can_send"] is False
        await fern.post("Hello?", "fern-muted-0002")
        await fern.expect_error("muted")


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_worker_connections")
async def test_a_warning_leaves_the_socket_alone(world, fac):
    async with Socket(world.path, await member_cookie(world.fern)) as fern:
        await run(act, fac, world, "warn")
        await fern.expect_quiet(0.5)
        await fern.send_and_ack("Understood.", "fern-warned-001")


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_worker_connections")
async def test_a_removed_members_socket_is_closed_and_stays_shut(world, fac):
    fern_cookie = await member_cookie(world.fern)
    async with Socket(world.path, fern_cookie) as fern:
        await run(act, fac, world, "remove", rule="1")
        frame = await fern.expect_closed("not_a_member", CLOSE_MEMBERSHIP_CHANGED, timeout=1)
        assert frame["message"]
    async with Socket(world.path, fern_cookie) as again:
        assert (again.connected, again.code) == (False, CLOSE_NOT_ALLOWED)


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_worker_connections")
async def test_a_suspended_member_cannot_come_back_until_the_date(world, fac):
    fern_cookie = await member_cookie(world.fern)
    async with Socket(world.path, fern_cookie) as fern:
        await run(act, fac, world, "suspend", rule="3", duration="1440")
        await fern.expect_closed("suspended", CLOSE_MEMBERSHIP_CHANGED, timeout=1)
    async with Socket(world.path, fern_cookie) as again:
        assert (again.connected, again.code) == (False, CLOSE_NOT_ALLOWED)

    # A day passes. Nobody has run the housekeeping job: the recorded status is still
    # "suspended", but a suspension ends at its date all the same.
    await run(
        lambda: Membership.objects.filter(pk=world.fern.pk).update(
            suspended_until=timezone.now() - timedelta(seconds=1)
        )
    )
    assert (await run(fresh, world.fern)).status == Status.SUSPENDED
    async with Socket(world.path, fern_cookie) as back:
        assert back.connected is True
        assert back.hello["you"]["can_send"] is True
        await back.send_and_ack("I'm back.", "fern-back-0002")


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_worker_connections")
async def test_hiding_a_message_reaches_everyone_and_replays_hidden(world):
    async with (
        Socket(world.path, await member_cookie(world.fern)) as fern,
        Socket(world.path, await member_cookie(world.river)) as river,
        Socket(world.path, await facilitator_cookie(world.facilitator)) as lantern,
    ):
        await run(
            services.message_hide,
            message=world.fern_message,
            actor=world.facilitator.user,
            guideline_number=2,
            reason="Unkind.",
        )
        expected = {"type": "message_changed", "seq": 1, "hidden": True, "body": None}
        for socket in (fern, river, lantern):
            assert await socket.expect("message_changed", timeout=1) == expected

        await river.send({"type": "resume", "after_seq": 0})
        first = await river.expect("message")
        assert (first["seq"], first["hidden"], first["body"]) == (1, True, None)
        assert first["author"] == "Fern"
        second = await river.expect("message")
        assert (second["seq"], second["hidden"]) == (2, False)
        await river.expect("resumed")

    (action,) = await run(lambda: list(ModerationAction.objects.all()))
    assert (action.kind, action.membership_id, action.reason) == (
        ActionKind.HIDE_MESSAGE,
        world.fern.pk,
        "Unkind.",
    )
    (event,) = await run(events, Action.MODERATION_ACTION_TAKEN)
    assert event.subject_id == world.fern.user_id
    assert event.extra == {"kind": "hide_message", "rule": 2, "seq": 1}


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_worker_connections")
async def test_a_step_in_one_group_leaves_the_persons_rooms_in_other_groups_alone(world, fac):
    """Beacon facilitates the other group and is a plain member ("Harbour") here."""
    other_meeting = await run(schedule, world.other_group, world.other_facilitator.user)
    beacon_cookie = await facilitator_cookie(world.other_facilitator)
    async with (
        Socket(world.path, beacon_cookie) as here,
        Socket(f"/ws/meetings/{other_meeting.pk}/", beacon_cookie) as there,
    ):
        assert here.hello["you"]["pseudonym"] == "Harbour"
        assert there.hello["you"] == {
            "pseudonym": "Beacon",
            "can_send": True,
            "is_facilitator": True,
            "muted": None,
        }
        await run(act, fac, world, "mute", duration="60", membership=world.harbour)
        assert (await here.expect("status", timeout=1))["can_send"] is False
        await there.expect_quiet(0.5)
        await there.send_and_ack("Good morning, everyone.", "beacon-msg-0001")


def test_hiding_an_already_hidden_message_is_refused_and_records_nothing_more(world):
    services.message_hide(
        message=world.fern_message, actor=world.facilitator.user, guideline_number=2
    )
    with pytest.raises(services.ModerationError) as refused:
        services.message_hide(
            message=world.fern_message, actor=world.facilitator.user, guideline_number=1
        )
    assert refused.value.code == "already_hidden"
    assert ModerationAction.objects.count() == 1
    assert len(events(Action.MODERATION_ACTION_TAKEN)) == 1


@pytest.mark.parametrize(
    ("kind", "length", "code"),
    [
        ("warn", {"minutes": 60}, "length_not_applicable"),
        ("remove", {"until": timezone.now() + timedelta(days=1)}, "length_not_applicable"),
        ("reinstate", {"minutes": 10}, "length_not_applicable"),
        ("mute", {"minutes": 0}, "invalid_length"),
        ("mute", {"minutes": -5}, "invalid_length"),
        ("suspend", {"minutes": 1.5}, "invalid_length"),
    ],
)
def test_a_length_that_does_not_apply_or_is_not_a_length_is_refused(world, kind, length, code):
    with pytest.raises(services.ModerationError) as refused:
        services.action_take(
            membership=world.fern,
            actor=world.facilitator.user,
            kind=kind,
            guideline_number=2,
            **length,
        )
    assert refused.value.code == code
    assert not ModerationAction.objects.exists()
    assert events(Action.MODERATION_ACTION_TAKEN) == []


def test_the_member_page_passes_a_length_only_with_a_step_that_lasts(world, fac):
    # "For" stands beside every step with 1 hour chosen: a warning goes through without it,
    # a mute keeps it.
    assert act(fac, world, "warn", duration="60").status_code == 302
    assert act(fac, world, "mute", duration="60").status_code == 302
    warning, mute = ModerationAction.objects.order_by("created_at", "pk")
    assert (warning.kind, warning.until) == ("warn", None)
    assert (mute.kind, mute.until is not None) == ("mute", True)


def test_a_second_report_about_a_hidden_message_can_still_be_resolved_with_hide(world):
    # Two members report one message; the first report's "hide" hides it. The second's
    # page still offers "hide" with a step: resolving it so does the step, and records
    # no second hide about the author.
    first, second = (
        services.report_file(actor=person.user, message=world.fern_message, guideline_number=2)
        for person in (world.river, world.harbour)
    )
    services.report_resolve(report=first, actor=world.facilitator.user, action="hide_message")
    resolved = services.report_resolve(
        report=second,
        actor=world.facilitator.user,
        action="warn",
        hide_message=True,
    )
    assert resolved.resolution == "hide_message+warn"
    steps = ModerationAction.objects.order_by("pk").values_list("kind", flat=True)
    assert list(steps) == ["hide_message", "warn"]
