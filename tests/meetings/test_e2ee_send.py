"""The sealed send (meetings/e2ee.py, sealed_send_check): what it costs in statements, that
it refuses what it refused before (with the same codes), and that its SQL form of "may this
device hold keys" gives the answers of meetings.selectors.device_may_hold_keys."""

from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from groups import services as group_services
from groups.models import Group, Membership, Status
from meetings import selectors, services
from meetings.e2ee import SealedMessage, ShareIn, may_hold_keys_sql
from meetings.models import Device, Message
from tests import factories
from tests.e2ee_client import E2EEDevice, b64, raw_public, unb64
from tests.meetings.e2ee_members import e2ee_world
from tests.sockets import cookie_of

pytestmark = pytest.mark.django_db

# Work statements only: under the test's transaction each atomic block is a savepoint.
BOOKKEEPING = ("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE", "ROLLBACK")


@pytest.fixture
def world():
    return e2ee_world()


@dataclass
class Seat:
    """A member in the room: a signed-in browser, its device (registered and present)."""

    membership: Membership
    client: Client
    keys: E2EEDevice

    @property
    def session_key(self) -> str:
        return cookie_of(self.client)


def seat(world, membership: Membership) -> Seat:
    client = factories.signed_in_client(membership.user)
    keys = E2EEDevice(world.meeting.pk)
    channel = f"test.{membership.pk}.{client.session.session_key[:8]}"
    services.presence_join(meeting=world.meeting, membership=membership, channel_name=channel)
    keys.id = services.device_register(
        meeting_id=world.meeting.pk,
        membership_id=membership.pk,
        session_key=cookie_of(client),
        channel_name=channel,
        ecdh=raw_public(keys.ecdh),
        ecdsa=raw_public(keys.ecdsa),
    ).device.pk
    return Seat(membership, client, keys)


def start_epoch(world, sender: Seat, recipients: list[Seat]) -> None:
    chain = sender.keys.new_epoch()
    services.keys_share(
        meeting_id=world.meeting.pk,
        membership_id=sender.membership.pk,
        session_key=sender.session_key,
        epoch=chain.epoch,
        shares=[ShareIn(r.keys.id, chain.index, bytes(60)) for r in [sender, *recipients]],
    )


def sealed_of(frame: dict) -> SealedMessage:
    sealed = frame["e2ee"]
    return SealedMessage(
        sender_device=sealed["sender_device"],
        epoch=sealed["epoch"],
        index=sealed["index"],
        **{k: unb64(sealed[k]) for k in ("iv", "ciphertext", "signature", "commitment")},
    )


def post(world, sender: Seat, client_id: str, *, frame: dict | None = None):  # noqa: ANN201
    frame = frame or sender.keys.seal(f"Said as {client_id}", client_id)[0]
    return services.message_post(
        meeting_id=world.meeting.pk,
        membership_id=sender.membership.pk,
        client_id=client_id,
        sealed=sealed_of(frame),
        session_key=sender.session_key,
    )


def refusal(world, sender: Seat, client_id: str, **kwargs) -> services.RoomError:
    with pytest.raises(services.RoomError) as refused:
        post(world, sender, client_id, **kwargs)
    assert not Message.objects.filter(client_id=client_id).exists()
    return refused.value


def work_statements(queries: CaptureQueriesContext) -> list[str]:
    statements = [q["sql"].split()[0].upper() for q in queries.captured_queries]
    return [s for s in statements if s not in BOOKKEEPING]


# --- what a sealed send costs --------------------------------------------------------------


def test_a_sealed_message_costs_one_statement_more_than_a_plain_one(world):
    """The session, the room, the sender, the sealed checks (device, epoch, its coverage),
    the insert with the seq: one statement for every E2EE check, whatever the room's size
    (prepared once per connection: see the next test)."""
    river, fern, moss = (seat(world, m) for m in (world.river, world.fern, world.moss))
    start_epoch(world, river, [fern, moss])
    post(world, river, "counted-0000")
    with CaptureQueriesContext(connection) as queries:
        posted = post(world, river, "counted-0001")
    assert posted.created
    assert work_statements(queries) == ["SELECT", "SELECT", "SELECT", "SELECT", "WITH"]

    # Five more people in the room: the same statements.
    extra = [
        seat(world, factories.give_place(world.group, person(f"extra-{n}"), f"Guest {n}"))
        for n in range(5)
    ]
    start_epoch(world, river, [fern, moss, *extra])
    with CaptureQueriesContext(connection) as larger:
        post(world, river, "counted-0002")
    assert work_statements(larger) == work_statements(queries)


def test_the_sealed_checks_statement_is_planned_once_per_connection(world):
    """Planning it took four times as long as running it (it joins six tables, 42 indexes
    between them): it is bound by the server and prepared on its connection
    (supportgroups/prepared.py), so PostgreSQL plans it once, not for every message."""
    river, fern, moss = (seat(world, m) for m in (world.river, world.fern, world.moss))
    seats = [river, fern, moss]
    for sender in seats:
        start_epoch(world, sender, [s for s in seats if s is not sender])
    for n in range(10):  # (each sender within the rate limit)
        assert post(world, seats[n % 3], f"planned-{n:04d}").created
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT generic_plans FROM pg_prepared_statements WHERE statement LIKE %s",
            ["%SELECT 'device', d.id, d.ecdsa%"],
        )
        (generic_plans,) = cursor.fetchone()
    assert generic_plans >= 1  # (custom plans would be planned again at every run)


# --- the same refusals, the same codes -------------------------------------------------------


def test_a_device_that_is_not_this_sessions_is_refused(world):
    river, fern = seat(world, world.river), seat(world, world.fern)
    start_epoch(world, river, [fern])
    # Fern's socket sends a message sealed and signed by River's device.
    frame = river.keys.seal("In River's name", "borrowed-001")[0]
    assert refusal(world, fern, "borrowed-001", frame=frame).code == "invalid_device"
    # A session with no device here yet.
    fern.keys.new_epoch()
    newcomer = Seat(world.fern, factories.signed_in_client(world.fern.user), fern.keys)
    assert refusal(world, newcomer, "no-device-01").code == "device_required"


def test_a_bad_signature_is_refused(world):
    river, fern = seat(world, world.river), seat(world, world.fern)
    start_epoch(world, river, [fern])
    frame = river.keys.seal("Signed, then changed", "tampered-01")[0]
    commitment = bytearray(unb64(frame["e2ee"]["commitment"]))
    commitment[0] ^= 1
    frame["e2ee"]["commitment"] = b64(bytes(commitment))
    assert refusal(world, river, "tampered-01", frame=frame).code == "invalid_e2ee"


def test_an_epoch_that_is_not_the_current_one_is_stale(world):
    river, fern = seat(world, world.river), seat(world, world.fern)
    start_epoch(world, river, [fern])
    old = river.keys.seal("Under epoch 1", "epoch-one-01")[0]
    start_epoch(world, river, [fern])
    assert refusal(world, river, "epoch-one-01", frame=old).code == "epoch_stale"
    assert post(world, river, "epoch-two-01").created


def test_an_epoch_shared_with_someone_no_longer_allowed_is_stale(world):
    river, fern, moss = (seat(world, m) for m in (world.river, world.fern, world.moss))
    start_epoch(world, river, [fern, moss])
    group_services.membership_leave(actor=world.moss.user, group=world.group)
    assert refusal(world, river, "after-leave-1").code == "epoch_stale"
    # A new epoch for those who remain: Moss's socket may still be open, it needs no key.
    start_epoch(world, river, [fern])
    assert post(world, river, "after-leave-2").created


def test_a_device_present_without_the_key_is_named(world):
    river, fern, moss = (seat(world, m) for m in (world.river, world.fern, world.moss))
    start_epoch(world, river, [fern])
    refused = refusal(world, river, "not-shared-01")
    assert refused.code == "keys_needed"
    assert refused.extra == {"devices": [moss.keys.id]}
    # A device whose heartbeat stopped is not present: it is not waited for.
    from meetings.models import Presence

    Presence.objects.filter(device_id=moss.keys.id).update(
        seen_at=timezone.now() - timedelta(minutes=5)
    )
    assert post(world, river, "not-shared-02").created


# --- one rule for "may this device hold keys" ---------------------------------------------


def test_the_sql_rule_gives_the_answers_of_device_may_hold_keys(world):
    people = {
        "active": world.river,
        "muted": world.fern,
        "mute_lapsed": world.moss,
        "suspended": factories.give_place(world.group, person("state-1"), "Sus"),
        "suspension_lapsed": factories.give_place(world.group, person("state-2"), "Lap"),
        "removed": factories.give_place(world.group, person("state-3"), "Rem"),
        "left": factories.give_place(world.group, person("state-4"), "Lef"),
        "no_name": factories.give_place(world.group, person("state-5")),
        "retired": factories.give_place(world.group, person("state-6"), "Ret"),
        "signed_out": factories.give_place(world.group, person("state-7"), "Out"),
    }
    devices = {name: seat_device(world, m) for name, m in people.items()}
    now = timezone.now()
    changes = {
        "muted": {"status": Status.MUTED, "muted_until": now + timedelta(minutes=5)},
        "mute_lapsed": {"status": Status.MUTED, "muted_until": now - timedelta(minutes=5)},
        "suspended": {"status": Status.SUSPENDED, "suspended_until": now + timedelta(days=1)},
        "suspension_lapsed": {
            "status": Status.SUSPENDED,
            "suspended_until": now - timedelta(minutes=1),
        },
        "removed": {"status": Status.REMOVED},
        "left": {"status": Status.LEFT},
    }
    for name, fields in changes.items():
        Membership.objects.filter(pk=people[name].pk).update(**fields)
    Device.objects.filter(pk=devices["retired"]).update(retired_at=now)
    Device.objects.filter(pk=devices["signed_out"]).update(session=None)

    def answers() -> dict[str, tuple[bool, bool]]:
        by_id = {
            d.pk: d
            for d in selectors.devices_with_members(Device.objects.filter(pk__in=devices.values()))
        }
        in_sql = dict(sql_answers(list(devices.values())))
        return {
            name: (selectors.device_may_hold_keys(by_id[pk]), bool(in_sql[pk]))
            for name, pk in devices.items()
        }

    first = answers()
    assert all(python == sql for python, sql in first.values()), first
    assert {name for name, (python, _) in first.items() if python} == {
        "active",
        "muted",
        "mute_lapsed",
        "suspension_lapsed",
    }
    # A new agreement: no one has signed it yet; then River signs.
    group_services.agreement_publish(group=world.group, actor=world.admin, text="Version two.")
    second = answers()
    assert all(python == sql for python, sql in second.values()), second
    assert not any(python for python, _ in second.values())
    group_services.agreement_sign(
        actor=world.river.user, group=world.group, typed_name="River", guidelines_acknowledged=True
    )
    third = answers()
    assert all(python == sql for python, sql in third.values()), third
    assert {name for name, (python, _) in third.items() if python} == {"active"}
    # A group left with no current agreement (its version deleted): no one may hold keys,
    # and the SQL says so with FALSE, never NULL (NOT NULL would pass a stale device).
    Group.objects.filter(pk=world.group.pk).update(current_agreement=None)
    fourth = answers()
    assert all(python == sql for python, sql in fourth.values()), fourth
    assert not any(python for python, _ in fourth.values())
    assert None not in dict(sql_answers(list(devices.values()))).values()


def person(handle: str):  # noqa: ANN201
    return factories.make_person(f"{handle}-login-handle")


def seat_device(world, membership: Membership) -> str:
    keys = E2EEDevice(world.meeting.pk)
    return Device.objects.create(
        membership=membership,
        session_id=cookie_of(factories.signed_in_client(membership.user)),
        ecdh=raw_public(keys.ecdh),
        ecdsa=raw_public(keys.ecdsa),
    ).pk


def sql_answers(device_ids: list[str]) -> list[tuple[str, bool]]:
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT d.id, {may_hold_keys_sql('d', 'm', 'g')} FROM {quote('meetings_device')} d"
            f" JOIN {quote('groups_membership')} m ON m.id = d.membership_id"
            f" JOIN {quote('groups_group')} g ON g.id = m.group_id WHERE d.id = ANY(%s)",
            [connection.ops.adapt_datetimefield_value(timezone.now()), device_ids],
        )
        return cursor.fetchall()
