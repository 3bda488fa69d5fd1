"""Reports of end-to-end encrypted messages (message franking, issue 19 point 6): a genuine
report opens the commitment stored with the message and the facilitator reads the verified
text; a changed text, a changed franking key or another message's commitment is refused
(`report_unverifiable`), audited, and no facilitator sees anything."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Session
from audit.events import Action
from groups import services as group_services
from groups.models import Membership, Status
from meetings.models import Device, Message
from moderation.models import Report
from moderation.services import ModerationError, report_file
from tests.database import events
from tests.e2ee_client import b64
from tests.meetings.e2ee_members import e2ee_world, enter
from tests.sockets import CLOSE_MEMBERSHIP_CHANGED, CLOSE_SIGNED_OUT, run

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("close_worker_connections"),
]


@pytest.fixture
def world():
    return e2ee_world()


async def two_messages(world):
    river = await enter(world, world.river)
    fern = await enter(world, world.fern)
    await fern.drain()
    unkind = await fern.say("You are all pathetic", "unkind-001")
    kind = await fern.say("Thank you all", "kind-00001")
    await river.read_until(kind["seq"])
    await river.drain()
    return (
        river,
        fern,
        river.read(unkind["seq"]),
        unkind["seq"],
        river.read(kind["seq"]),
        kind["seq"],
    )


def report_frame(seq, plaintext, franking_key) -> dict:
    return {
        "type": "report",
        "seq": seq,
        "guideline": 1,
        "note": "",
        "plaintext": plaintext,
        "franking_key": b64(franking_key),
    }


async def test_a_genuine_report_is_verified_and_the_facilitator_reads_it(world):
    river, fern, unkind, seq, _, _ = await two_messages(world)
    try:
        assert unkind["shown"] == "You are all pathetic"
        await river.socket.send(report_frame(seq, unkind["shown"], unkind["franking_key"]))
        assert (await river.wait_for("reported", "error"))["type"] == "reported"
    finally:
        await river.leave()
        await fern.leave()
    report = await run(Report.objects.get)
    assert report.message_body == "You are all pathetic"  # (stored encrypted, as every report)
    assert report.reported_id == world.fern.pk
    assert await run(events, Action.E2EE_REPORT_UNVERIFIED) == []
    assert len(await run(events, Action.REPORT_FILED)) == 1


@pytest.mark.parametrize("forgery", ["changed_text", "changed_key", "other_commitment", "none"])
async def test_a_report_that_does_not_open_the_commitment_is_refused_and_audited(world, forgery):
    river, fern, unkind, seq, kind, kind_seq = await two_messages(world)
    try:
        frame = {
            # A reporter who rewrites what was said.
            "changed_text": report_frame(seq, "I will hurt you", unkind["franking_key"]),
            # Or claims another franking key.
            "changed_key": report_frame(seq, unkind["shown"], bytes(32)),
            # Or opens another message's commitment under this one's seq.
            "other_commitment": report_frame(seq, kind["shown"], kind["franking_key"]),
            # Or sends no proof at all.
            "none": {"type": "report", "seq": seq, "guideline": 1},
        }[forgery]
        await river.socket.send(frame)
        refused = await river.wait_for("reported", "error")
        assert refused["type"] == "error" and refused["code"] == "report_unverifiable"
        assert "You are all pathetic" not in refused["message"]
        await river.socket.still_usable()
    finally:
        await river.leave()
        await fern.leave()
    assert await run(Report.objects.count) == 0
    audited = await run(events, Action.E2EE_REPORT_UNVERIFIED)
    assert len(audited) == 1
    assert audited[0].actor_id == world.river.user_id
    assert audited[0].extra == {}  # ids only: no text of the message or the claim
    assert await run(events, Action.REPORT_FILED) == []
    assert kind_seq != seq


async def test_outsiders_cannot_file_or_probe_a_report(world):
    """Another group's member and a member who left are refused before any check (so no
    one outside the room can test guesses against a commitment), and nothing is audited
    as an unverified report."""
    river, fern, unkind, seq, _, _ = await two_messages(world)
    await river.leave()
    await fern.leave()
    message = await run(Message.objects.select_related("meeting").get, seq=seq)
    await run(group_services.membership_leave, actor=world.river.user, group=world.group)
    for outsider in (world.stranger.user, world.river.user):
        with pytest.raises(ModerationError) as refused:
            await run(
                report_file,
                actor=outsider,
                message=message,
                guideline_number=1,
                plaintext=unkind["shown"],
                franking_key=unkind["franking_key"],
            )
        assert refused.value.code == "not_a_member"
    assert await run(events, Action.E2EE_REPORT_UNVERIFIED) == []
    assert await run(Report.objects.count) == 0


@pytest.mark.parametrize("change", ["suspended", "signed_out"])
async def test_a_member_suspended_or_signed_out_meanwhile_cannot_report(world, change):
    """The report frame re-checks the session and the member, as every frame does: a
    socket whose notice was lost still cannot report."""
    river, fern, unkind, seq, _, _ = await two_messages(world)
    try:
        if change == "suspended":
            await run(
                lambda: Membership.objects.filter(pk=world.river.pk).update(
                    status=Status.SUSPENDED, suspended_until=timezone.now() + timedelta(days=1)
                )
            )
        else:
            session = await run(lambda: Device.objects.get(pk=river.device.id).session_id)
            await run(lambda: Session.objects.filter(session_key=session).delete())
        await river.socket.send(report_frame(seq, unkind["shown"], unkind["franking_key"]))
        if change == "suspended":
            refused = await river.wait_for("error")
            assert refused["code"] == "suspended"
            assert "suspended from this group's meetings until " in refused["message"]
            await river.socket.expect_close(CLOSE_MEMBERSHIP_CHANGED)
        else:
            await river.wait_for("signed_out")
            await river.socket.expect_close(CLOSE_SIGNED_OUT)
        await river.socket.hang_up()
    finally:
        await river.leave()
        await fern.leave()
    assert await run(Report.objects.count) == 0
    assert await run(events, Action.E2EE_REPORT_UNVERIFIED) == []


async def test_a_device_that_was_never_given_the_key_cannot_report_the_message(world):
    """Moss came after Fern's message: even handed its text and franking key (both open
    the commitment), Moss's device never read it, so Moss cannot report it; and the
    commitment is not even tried (nothing audited)."""
    river, fern, unkind, seq, _, _ = await two_messages(world)
    moss = await enter(world, world.moss)
    try:
        await moss.drain()
        await moss.socket.send(report_frame(seq, unkind["shown"], unkind["franking_key"]))
        refused = await moss.wait_for("reported", "error")
        assert refused["type"] == "error" and refused["code"] == "report_refused", refused
        await moss.socket.still_usable()
        # River, who was there, can.
        await river.socket.send(report_frame(seq, unkind["shown"], unkind["franking_key"]))
        assert (await river.wait_for("reported", "error"))["type"] == "reported"
    finally:
        await moss.leave()
        await river.leave()
        await fern.leave()
    assert await run(lambda: list(Report.objects.values_list("reporter_id", flat=True))) == [
        world.river.pk
    ]
    assert await run(events, Action.E2EE_REPORT_UNVERIFIED) == []
