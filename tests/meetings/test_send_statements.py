"""The chat send path's hand-written statements (meetings/services.py) give the same
answers as the ORM definitions they stand in for: who signed the current agreement, how
many messages someone sent lately, and what a stored message reads back as."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts import services as accounts_services
from accounts.models import Session, User
from groups import services as group_services
from groups.models import Membership, Status
from groups.selectors import membership_has_signed_current, signed_current_agreement
from meetings import services
from meetings.models import Meeting, Message
from supportgroups.prepared import fetch_all
from tests.factories import signed_in_client
from tests.meetings.conftest import build_world, give_place, make_person, schedule
from tests.sockets import cookie_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    return build_world()


def sender(membership: Membership, *, since=None) -> Membership:  # noqa: ANN001
    since = since or timezone.now() - timedelta(seconds=10)
    senders, _ = services._senders({membership.pk}, recent_since=since, client_ids=set())
    return senders.get(membership.pk)


def orm_answer(membership: Membership) -> bool:
    annotated = Membership.objects.annotate(signed_current=signed_current_agreement()).get(
        pk=membership.pk
    )
    fresh = Membership.objects.get(pk=membership.pk)
    assert annotated.signed_current == membership_has_signed_current(fresh)
    return annotated.signed_current


def test_signed_current_agrees_with_the_orm_through_versions_and_signings(world):
    newcomer = give_place(world.group, make_person("newcomer-handle"))  # no name, not signed
    people = [world.river, world.fern, world.facilitator, newcomer]

    def check() -> list[bool]:
        answers = [bool(sender(m).signed_current) for m in people]
        assert answers == [orm_answer(m) for m in people]
        return answers

    assert check() == [True, True, True, False]
    group_services.agreement_publish(group=world.group, actor=world.admin, text="Version two.")
    assert check() == [False, False, False, False]
    group_services.agreement_sign(
        actor=world.fern.user,
        group=world.fern.group,
        typed_name="Fern",
        guidelines_acknowledged=True,
    )
    assert check() == [False, True, False, False]


def test_the_sender_row_is_the_membership_as_the_orm_loads_it(world):
    Membership.objects.filter(pk=world.river.pk).update(
        status=Status.MUTED, muted_until=timezone.now() + timedelta(minutes=10)
    )
    loaded = sender(world.river)
    expected = Membership.objects.get(pk=world.river.pk)
    for field in Membership._meta.concrete_fields:
        assert getattr(loaded, field.attname) == getattr(expected, field.attname), field.name
    assert sender(Membership(pk=999_999)) is None


def test_sent_recently_counts_only_this_members_messages_since_the_moment(world):
    meeting = world.meeting
    for n in range(3):
        services.message_post(
            meeting_id=meeting.pk,
            membership_id=world.river.pk,
            client_id=f"river-{n:04d}",
            body=f"River {n}",
        )
    services.message_post(
        meeting_id=meeting.pk, membership_id=world.fern.pk, client_id="fern-0001", body="Fern"
    )
    Message.objects.filter(client_id="river-0000").update(
        created_at=timezone.now() - timedelta(minutes=5)
    )
    since = timezone.now() - timedelta(seconds=10)
    expected = Message.objects.filter(author=world.river, created_at__gt=since).count()
    assert expected == 2
    assert sender(world.river, since=since).sent_recently == expected
    assert sender(world.fern, since=since).sent_recently == 1


def test_a_stored_message_reads_back_as_it_was_posted(world):
    posted = services.message_post(
        meeting_id=world.meeting.pk,
        membership_id=world.river.pk,
        client_id="readback-0001",
        body="Ünïcode, quotes ' \" and a\nnew line.",
    ).message
    stored = Message.objects.get(pk=posted.pk)
    for field in Message._meta.concrete_fields:
        assert getattr(posted, field.attname) == getattr(stored, field.attname), field.name
    assert services.message_event(posted) == services.message_event(stored)
    # The body is stored encrypted, never as typed.
    with connection.cursor() as cursor:
        cursor.execute("SELECT body FROM meetings_message WHERE id = %s", [posted.pk])
        (raw,) = cursor.fetchone()
    assert "Ünïcode" not in raw and raw.startswith("gAAAAA")


def test_a_batch_costs_three_statements_however_many_sends_it_has(world):
    # (Once the room has been opened, or the meeting's first message took the group's
    # encryption setting: see the test below.)
    services.meeting_fix_e2ee(meeting=world.meeting)

    def statements(sends: int) -> list[str]:
        with CaptureQueriesContext(connection) as queries:
            outcomes = services.messages_post(
                sends=[
                    services.MessageSend(
                        meeting_id=world.meeting.pk,
                        membership_id=member.pk,
                        client_id=f"count-{sends}-{n:04d}",
                        body="Counting.",
                    )
                    for n, member in zip(range(sends), [world.river, world.fern] * 3, strict=False)
                ]
            )
        assert all(isinstance(o, services.PostedMessage) for o in outcomes)
        return [q["sql"].split()[0].upper() for q in queries.captured_queries]

    # The rooms, the senders (with the client ids already stored), then one statement
    # numbering the rooms and inserting the messages; no savepoint per send. (Under the
    # test's own transaction the batch's atomic block is itself one savepoint.)
    expected = ["SAVEPOINT", "SELECT", "SELECT", "WITH", "RELEASE"]
    assert statements(1) == expected
    assert statements(5) == expected
    assert [seq for (seq,) in world.meeting.messages.values_list("seq")] == list(range(1, 7))


def test_a_first_message_fixing_the_meetings_encryption_setting_is_audited_once(world):
    # A meeting whose first message comes before anyone opened its room takes the group's
    # setting with it (under the batch's lock of the room): recorded as meeting_fix_e2ee
    # records it, and only that message pays for it.
    from audit.events import Action
    from audit.models import Event
    from meetings.models import Meeting

    assert Meeting.objects.get(pk=world.meeting.pk).e2ee is None
    for n in range(2):
        services.message_post(
            meeting_id=world.meeting.pk,
            membership_id=world.river.pk,
            client_id=f"first-{n:04}",
            body="Hello.",
        )
    assert Meeting.objects.get(pk=world.meeting.pk).e2ee is False
    fixed = Event.objects.filter(action=Action.E2EE_MEETING_FIXED)
    assert [(e.target_id, e.actor_id, e.group_id, e.extra) for e in fixed] == [
        (str(world.meeting.pk), None, world.group.pk, {"e2ee": False})
    ]
    # Opening the room afterwards records nothing more.
    services.meeting_fix_e2ee(meeting=Meeting.objects.get(pk=world.meeting.pk))
    assert fixed.count() == 1


def test_the_senders_statement_finds_the_client_ids_already_stored_in_their_own_room(world):
    other_room = schedule(world.group, world.facilitator.user)
    for meeting, client_id in [(world.meeting, "stored-0001"), (other_room, "stored-0002")]:
        services.message_post(
            meeting_id=meeting.pk, membership_id=world.river.pk, client_id=client_id, body="Hi."
        )
    _, stored = services._senders(
        {world.river.pk, world.fern.pk},
        recent_since=timezone.now() - timedelta(seconds=10),
        client_ids={
            (world.meeting.pk, "stored-0001"),
            (world.meeting.pk, "stored-0002"),  # stored, but in the other room
            (other_room.pk, "stored-0003"),
        },
    )
    assert {key: m.seq for key, m in stored.items()} == {(world.meeting.pk, "stored-0001"): 1}


def test_the_embedded_defaults_orm_reads_give_the_statements_answers(world):
    # (The send path's SQL is PostgreSQL's; `make run`'s SQLite reads the same through
    # the ORM, which runs here too: both must answer alike.)
    from meetings.models import MeetingHold

    other_room = schedule(world.group, world.facilitator.user)
    for meeting, client_id in [(world.meeting, "stored-0001"), (other_room, "stored-0002")]:
        services.message_post(
            meeting_id=meeting.pk, membership_id=world.river.pk, client_id=client_id, body="Hi."
        )
    MeetingHold.objects.create(group=world.group)
    asked = {
        "recent_since": timezone.now() - timedelta(seconds=10),
        "client_ids": {(world.meeting.pk, "stored-0001"), (world.meeting.pk, "stored-0002")},
    }
    members = {world.river.pk, world.fern.pk}
    statement = services._senders(members, **asked)
    portable = services._senders_portable(members, **asked)

    def described(answer):  # noqa: ANN001, ANN202
        senders, stored = answer
        rows = {pk: (m.signed_current, m.sent_recently, m.pseudonym) for pk, m in senders.items()}
        return rows, {key: m.pk for key, m in stored.items()}

    assert described(statement) == described(portable)
    assert described(statement)[0][world.river.pk][1] == 2
    rooms = {world.meeting.pk, other_room.pk}
    by_statement = Meeting.objects.raw(services._rooms_sql(skip_locked=False), [sorted(rooms)])
    assert [(m.pk, m.last_seq, m.on_hold) for m in by_statement] == [
        (m.pk, m.last_seq, m.on_hold) for m in services._rooms_portable(rooms)
    ]
    assert {m.on_hold for m in services._rooms_portable(rooms)} == {True}


def test_the_room_row_is_the_meeting_as_the_orm_loads_it(world):
    from meetings.models import MeetingHold

    services.meeting_fix_e2ee(meeting=world.meeting)
    MeetingHold.objects.create(group=world.group)
    (loaded,) = services._rooms_read({world.meeting.pk}, skip_locked=False)
    expected = Meeting.objects.get(pk=world.meeting.pk)
    for field in Meeting._meta.concrete_fields:
        assert getattr(loaded, field.attname) == getattr(expected, field.attname), field.name
    assert loaded.on_hold is True
    assert (loaded._state.adding, loaded._state.db) == (False, "default")


@pytest.mark.skipif(connection.vendor != "postgresql", reason="server-side prepared statements")
def test_the_send_paths_statements_are_prepared_on_their_connection(world):
    # Bound by the server, the same statement is planned once per connection, not once
    # per message (supportgroups/prepared.py): psycopg prepares it after its fifth run.
    services.meeting_fix_e2ee(meeting=world.meeting)
    sessions = {m.pk: cookie_of(signed_in_client(m.user)) for m in (world.river, world.fern)}
    for n in range(8):  # (two members: within the rate limit)
        member = (world.river, world.fern)[n % 2]
        services.message_post(
            meeting_id=world.meeting.pk,
            membership_id=member.pk,
            client_id=f"prepared-{n:04d}",
            body="Again.",
            session_key=sessions[member.pk],
        )
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement, generic_plans FROM pg_prepared_statements")
        # Each with one generic plan, not planned again for every run.
        prepared = [statement for statement, generic in cursor.fetchall() if generic >= 1]
    assert any("INSERT INTO" in s and "meetings_message" in s for s in prepared), prepared
    assert any("FOR NO KEY UPDATE OF m" in s for s in prepared), prepared
    assert any("signed_current" in s for s in prepared), prepared
    assert any("accounts_session" in s and "FOR NO KEY UPDATE" in s for s in prepared), prepared


def generic_plan(sql: str, params: list, *, grow=None) -> str:  # noqa: ANN001
    """The plan PostgreSQL runs ``sql`` with once prepared (plan_cache_mode is
    force_generic_plan on every connection: supportgroups/settings.py), as EXPLAIN
    ANALYZE prints it. With ``grow``: the plan made (once) while the tables are as they
    are now, as it runs after ``grow()`` filled them: a Daphne's connection keeps the plan
    it made on its fifth run until the tables are analyzed again, however much they grow
    meanwhile."""
    numbered = sql
    for n in range(1, sql.count("%s") + 1):
        numbered = numbered.replace("%s", f"${n}", 1)
    placeholders = ", ".join(["%s"] * len(params))
    with connection.cursor() as cursor:
        cursor.execute(f"PREPARE plan_probe AS {numbered}")
        if grow is not None:
            cursor.execute(f"EXECUTE plan_probe({placeholders})", params)  # (planned here)
            grow()
        cursor.execute(f"EXPLAIN (ANALYZE, COSTS OFF) EXECUTE plan_probe({placeholders})", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("DEALLOCATE plan_probe")
    return plan


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's plans")
def test_the_session_check_is_led_by_the_session_keys_however_many_sessions_there_are(world):
    # Planned without the values, a filter on every session ("key in (...) and not
    # expired") walked the expiry index over all the sessions signed in, for each message.
    Session.objects.bulk_create(
        Session(
            session_key=f"other-session-{n:06d}",
            session_data="",
            expire_date=timezone.now() + timedelta(days=1),
            user_id=world.river.user_id,
        )
        for n in range(1000)
    )
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Session._meta.db_table}")
    key = cookie_of(signed_in_client(world.river.user))

    plan = generic_plan(accounts_services._sessions_hold_sql(), [[key], timezone.now()])

    # One index probe per key (the primary key's, or its twin for LIKE: the same keys),
    # each row locked as it is found.
    assert "Function Scan on unnest" in plan, plan
    assert "Index Cond: ((session_key)::text = (wanted.session_key)::text)" in plan, plan
    assert plan.index("LockRows") > plan.index("Nested Loop"), plan
    assert "expire_date_" not in plan, plan  # (the expiry index's name)
    assert "Seq Scan" not in plan, plan
    assert accounts_services.sessions_hold(session_keys=[key]) == {key}


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's plans")
def test_the_senders_statement_is_led_by_its_keys_even_planned_when_the_tables_were_small(world):
    # Planned while the tables were small (a new install, or the bench's first minute),
    # joins over "= ANY(array)" hashed whole tables: every message read the whole messages
    # table to find the batch's client ids (157 buffers a run in bench.sendpath).
    meeting = world.meeting

    def grow() -> None:
        users = User.objects.bulk_create(User(username=f"grown-{n:04d}") for n in range(1500))
        members = Membership.objects.bulk_create(
            Membership(
                group=world.group,
                user=user,
                status=Status.ACTIVE,
                pseudonym=f"Grown {n}",
                pseudonym_key=f"grown {n}",
            )
            for n, user in enumerate(users)
        )
        Message.objects.bulk_create(
            Message(
                meeting=meeting,
                seq=n + 1,
                client_id=f"grown-{n:05d}",
                author=members[n % len(members)],
                body="Grown.",
                created_at=timezone.now() - timedelta(minutes=5),
            )
            for n in range(10_000)
        )

    since = timezone.now() - timedelta(seconds=10)
    sql, params = services._senders_statement(
        {world.river.pk}, since, {(meeting.pk, "grown-00001")}
    )
    plan = generic_plan(sql, params, grow=grow)

    assert "Seq Scan on meetings_message" not in plan, plan
    assert "Seq Scan on groups_membership" not in plan, plan
    assert "Index Scan using groups_membership_pkey" in plan, plan
    assert "Index Scan using unique_message_client_id" in plan, plan
    assert "Backward using message_author_recent" in plan, plan  # (newest first, cut short)
    senders, stored = services._senders_from(fetch_all(sql, params))
    assert set(senders) == {world.river.pk}
    assert [m.client_id for m in stored.values()] == ["grown-00001"]


def test_sent_recently_is_counted_up_to_the_rate_limit_alike_on_both_paths(world, settings):
    settings.CHAT_RATE_LIMIT_MESSAGES = 2
    Message.objects.bulk_create(
        Message(
            meeting=world.meeting,
            seq=n + 1,
            client_id=f"recent-{n}",
            author=world.river,
            body="Hi.",
            created_at=timezone.now(),
        )
        for n in range(4)
    )
    asked = {"recent_since": timezone.now() - timedelta(seconds=10), "client_ids": set()}
    statement = services._senders({world.river.pk}, **asked)[0][world.river.pk]
    portable = services._senders_portable({world.river.pk}, **asked)[0][world.river.pk]
    assert statement.sent_recently == portable.sent_recently == 2
    assert not services._rate_allows(statement)


def test_no_index_of_the_messages_table_is_kept_twice():
    # Every index is written once per message sent: one led by the same columns as
    # another's first ones only costs (the foreign keys' own indexes were such).
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, Message._meta.db_table)
    # (The indexes behind the primary key and unique constraints count too.)
    indexes = [tuple(c["columns"]) for c in constraints.values() if c["index"] or c["unique"]]
    for columns in indexes:
        longer = [other for other in indexes if other != columns]
        assert not any(other[: len(columns)] == columns for other in longer), (columns, indexes)
    assert len(indexes) == len(set(indexes)), indexes
