"""Benchmark data, made through the app's own services (as supportgroups/demo.py does).

Runs in the benchmark process against the live database, after ``django.setup()``.
Passwords are known (``PASSWORD``). Argon2 costs about a second per hash on a small box,
so the hundreds of chat users get a cheap PBKDF2 hash (1,000 rounds; it still verifies
in the Daphnes, whose hasher list includes PBKDF2) — but the login-storm users have a real
Argon2 hash, made by the app's own first hasher, because hashing is what the storm is
about. Sessions are made with ``django.test.Client.force_login`` against the same
database; facilitators and admins get a confirmed authenticator and a 2FA-verified
session, as the real two-factor step would leave it.
"""

from __future__ import annotations

import contextlib
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.hashers import PBKDF2PasswordHasher, make_password
from django.db import connections
from django.test import Client
from django.test.utils import override_settings
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY

from accounts.models import TOTPDevice, User
from audit.events import Action
from audit.services import record_event
from board import services as board_services
from board.models import Post, Thread
from groups import services as group_services
from groups.models import Group, Membership, Retention, Topic
from meetings import services as meeting_services
from meetings.models import Meeting
from moderation import services as moderation_services
from moderation.models import ActionKind

PASSWORD = "bench-password-not-for-real-use"
HOST = "127.0.0.1"


class CheapHasher(PBKDF2PasswordHasher):
    """PBKDF2 with few rounds: same algorithm name, so the Daphnes verify it normally."""

    iterations = 1000


@contextlib.contextmanager
def cheap_passwords_and_quiet_email():
    with override_settings(
        PASSWORD_HASHERS=["bench.data.CheapHasher"],
        EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
    ):
        yield


def parallel(work, items: list, workers: int = 6) -> list:  # noqa: ANN001
    """``[work(item) for item in items]`` on a few threads, each with its own database
    connection: building data waits on PostgreSQL far more than it computes."""

    def one(item):  # noqa: ANN001, ANN202
        try:
            return work(item)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, items))


# --- people and sessions ------------------------------------------------------------------


def make_user(username: str, *, is_staff: bool = False) -> User:
    return User.objects.create_user(username=username, password=PASSWORD, is_staff=is_staff)


def session_key(user: User, *, verified: bool = False) -> str:
    """A signed-in session for ``user`` (2FA-verified when asked), as its cookie value."""
    client = Client(HTTP_HOST=HOST)
    client.force_login(user)
    if verified:
        device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
        if device is None:
            device = TOTPDevice.objects.create(user=user, name="Benchmark phone", confirmed=True)
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def signed_in_client(user: User, *, verified: bool = False) -> Client:
    """An in-process test client on the same session (for counting queries)."""
    client = Client(HTTP_HOST=HOST)
    client.cookies[settings.SESSION_COOKIE_NAME] = session_key(user, verified=verified)
    return client


# --- groups, members, meetings ------------------------------------------------------------


def make_group(
    admin: User,
    name: str,
    *,
    guidelines: int = 3,
    requires_screening: bool = False,
    e2ee: bool = False,
) -> Group:
    # (Plain meetings unless asked: the room runs post a body; the E2EE run asks.)
    return group_services.group_create(
        e2ee_meetings=e2ee,
        actor=admin,
        name=name,
        topic=Topic.MENTAL_HEALTH,
        description="A benchmark group.",
        eligibility="Adults.",
        meeting_rhythm="Every evening",
        listed=False,
        requires_screening=requires_screening,
        capacity=None,
        retention=Retention.DAYS_7,
        crisis_resources="Call your local emergency number.",
        guidelines=[f"Guideline number {n}: be kind." for n in range(1, guidelines + 1)],
        agreement_text="I will keep what is said here confidential.",
        agreement_summary="Confidentiality.",
    )


def add_member(group: Group, user: User, pseudonym: str, *, actor: User) -> Membership:
    membership = group_services.membership_create(
        group=group, user=user, actor=actor, reason="benchmark"
    )
    return group_services.membership_take_place(
        actor=membership.user,
        group=membership.group,
        pseudonym=pseudonym,
        typed_name=pseudonym,
        guidelines_acknowledged=True,
    )


def add_facilitator(group: Group, user: User, pseudonym: str, *, actor: User) -> Membership:
    membership = group_services.facilitator_appoint(group=group, actor=actor, user=user)
    return group_services.membership_take_place(
        actor=membership.user,
        group=membership.group,
        pseudonym=pseudonym,
        typed_name=pseudonym,
        guidelines_acknowledged=True,
    )


def open_meeting(group: Group, actor: User, *, occurrences: int = 1) -> Meeting:
    """A meeting whose room is open now for the whole run (and, if asked, the next ones)."""
    now = timezone.now().replace(microsecond=0)
    meetings = meeting_services.meeting_schedule(
        group=group,
        actor=actor,
        title="Benchmark meeting",
        starts_at=now - timedelta(minutes=5),
        ends_at=now + timedelta(hours=3),
        recurrence="weekly" if occurrences > 1 else "none",
        occurrences=occurrences,
    )
    return meetings[0]


# --- the audit console's people (built first: the log must start near 1,000 rows) -------


@dataclass
class AuditPeople:
    admin: User
    admin_session: str
    facilitator: User
    user_ids: list[int]
    facilitator_ids: list[int]
    group_ids: list[int]


def build_audit_people() -> AuditPeople:
    """An admin (2FA-verified), a few groups with facilitators and members, and one of
    each kind of event the services write: the templates of the synthetic history."""
    with cheap_passwords_and_quiet_email():
        admin = make_user("bench-admin", is_staff=True)
        facilitators, members, groups = [], [], []
        for g in range(4):
            group = make_group(admin, f"History circle {g + 1}")
            groups.append(group)
            fac_user = make_user(f"bench-history-facilitator-{g + 1}")
            facilitators.append(fac_user)
            add_facilitator(group, fac_user, f"Guide {g + 1}", actor=admin)
            people = []
            for n in range(12):
                user = make_user(f"bench-history-member-{g + 1}-{n + 1}")
                members.append(user)
                people.append(add_member(group, user, f"Person {n + 1}", actor=fac_user))
            meeting = open_meeting(group, fac_user)
            posted = meeting_services.message_post(
                meeting_id=meeting.pk,
                membership_id=people[0].pk,
                client_id=f"history-{g}-{secrets.token_hex(4)}",
                body="Hello everyone.",
            ).message
            moderation_services.report_file(
                actor=people[1].user, message=posted, guideline_number=1, note=""
            )
            moderation_services.action_take(
                membership=people[0],
                actor=fac_user,
                kind=ActionKind.WARN,
                guideline_number=1,
                reason="Benchmark warning.",
            )
        # What the accounts services record at sign-in and sign-out (no request here).
        for n, user in enumerate(members[:20]):
            ip = f"198.51.100.{n + 1}"
            record_event(action=Action.LOGIN_SUCCEEDED, actor=user, subject=user, ip=ip)
            record_event(action=Action.LOGGED_OUT, actor=user, subject=user, ip=ip)
        record_event(
            action=Action.LOGIN_FAILED,
            subject=members[0],
            ip="203.0.113.9",
            extra={"known_account": True},
        )
    return AuditPeople(
        admin=admin,
        admin_session=session_key(admin, verified=True),
        facilitator=facilitators[0],
        user_ids=[u.pk for u in members],
        facilitator_ids=[u.pk for u in facilitators],
        group_ids=[g.pk for g in groups],
    )


# --- chat rooms ---------------------------------------------------------------------------


@dataclass
class Seat:
    """One member's place in one room: what a socket needs to join as them."""

    username: str
    cookie: str
    membership_id: int


@dataclass
class Room:
    name: str
    meeting_id: int
    seats: list[Seat] = field(default_factory=list)


def build_rooms(admin: User, *, prefix: str, sizes: list[int], e2ee: bool = False) -> list[Room]:
    """One group per room, each with an open meeting and ``size`` members, each member
    a distinct person with their own session (E2EE meetings if ``e2ee``)."""

    def build(numbered: tuple[int, int]) -> Room:
        r, size = numbered
        group = make_group(admin, f"{prefix} room {r + 1}", e2ee=e2ee)
        host = make_user(f"bench-{prefix}-{r + 1}-host")
        add_facilitator(group, host, "Host", actor=admin)  # who schedules its meeting
        meeting = open_meeting(group, host)
        room = Room(name=f"{prefix}-{r + 1}", meeting_id=meeting.pk)
        for n in range(size):
            user = make_user(f"bench-{prefix}-{r + 1}-{n + 1}")
            membership = add_member(group, user, f"Member {n + 1}", actor=admin)
            room.seats.append(Seat(user.username, session_key(user), membership.pk))
        return room

    with cheap_passwords_and_quiet_email():
        return parallel(build, list(enumerate(sizes)))


# --- the login storm -----------------------------------------------------------------------


def build_storm_users(count: int) -> list[str]:
    """``count`` people with a real Argon2 hash of ``PASSWORD``. The hash is made once
    (about a second here) and given to all of them: verifying it at login costs exactly
    what verifying 50 separately salted hashes would."""
    encoded = make_password(PASSWORD)  # the app's own first hasher: Argon2
    assert encoded.startswith("argon2"), encoded
    names = [f"bench-storm-{n + 1:02d}" for n in range(count)]
    User.objects.bulk_create([User(username=name, password=encoded) for name in names])
    return names


# --- pages with 10 and 100 rows -----------------------------------------------------------


@dataclass
class PageSet:
    """The same pages at two sizes: URLs and the sessions that may open them."""

    rows: int
    member_session: str  # for /groups/mine/ (``rows`` groups)
    member_user: User
    home_url: str  # a group home with ``rows`` guidelines and meetings
    home_session: str
    home_user: User
    dashboard_url: str  # a facilitator dashboard with ``rows`` members, reports, flags...
    facilitator_session: str
    facilitator_user: User
    # The same group's member list, moderation log and review queue (``rows`` applications).
    members_url: str = ""
    log_url: str = ""
    queue_url: str = ""
    # A group's board and its busiest thread: 10 posts at 10 rows, 1,000 at 100 (issue 20).
    board_url: str = ""
    thread_url: str = ""
    board_session: str = ""
    board_user: User | None = None


def page_set_clients(page_set: PageSet) -> dict[str, Client]:
    """In-process clients on the sessions of a page set's people, by who opens a page
    (bench/__main__.py PAGES): for counting and profiling its queries."""
    return {
        "member": signed_in_client(page_set.member_user),
        "home": signed_in_client(page_set.home_user),
        "facilitator": signed_in_client(page_set.facilitator_user, verified=True),
        "board": signed_in_client(page_set.board_user),
    }


# Posts on the benchmarked board, by the page set's rows.
BOARD_POSTS = {10: 10, 100: 1000}


def build_board(admin: User, posts: int) -> tuple[Group, Membership]:
    """A board of ``posts`` posts: half of them start threads, the other half reply in the
    first thread (as tests/board/test_board_queries.py). The first thread goes through
    the service; the rest are written in bulk (the service's rate limit is per person, and
    this is set-up, not a measurement). Returns the group and a reader's place."""
    group = make_group(admin, f"Board group {posts}")
    writer = add_member(group, make_user(f"bench-board-writer-{posts}"), "Writer", actor=admin)
    reader = add_member(group, make_user(f"bench-board-reader-{posts}"), "Reader", actor=admin)
    first = board_services.thread_start(
        actor=writer.user, group=group, title="The first thread", body="Post 1."
    )
    threads = posts // 2
    Thread.objects.bulk_create(
        Thread(group=group, number=n, title=f"Thread {n}", author=writer, last_post_number=1)
        for n in range(2, threads + 1)
    )
    replies = posts - threads
    Post.objects.bulk_create(
        [
            Post(thread=thread, number=1, author=writer, body="A first post.")
            for thread in Thread.objects.filter(group=group).exclude(pk=first.pk)
        ]
        + [
            Post(thread=first, number=n, author=reader, body=f"Reply {n}.")
            for n in range(2, replies + 2)
        ]
    )
    Thread.objects.filter(pk=first.pk).update(last_post_number=replies + 1)
    return group, reader


def build_pages(admin: User, rows: int, *, shared_groups: list[Group]) -> PageSet:
    with cheap_passwords_and_quiet_email():
        # "My groups": one person in ``rows`` groups.
        member = make_user(f"bench-page-member-{rows}")
        name = "Reader" if rows == 10 else "Visitor"  # both people may share a group
        # Sequential on purpose: concurrent service calls about one person or one group can
        # deadlock (the audit chain's advisory lock against select_for_update rows; see the
        # benchmark report), and this is set-up, not a measurement.
        for n in range(rows):
            add_member(shared_groups[n], member, f"{name} {n + 1}", actor=admin)

        # A group home: ``rows`` guidelines and ``rows`` upcoming meetings.
        home_user = make_user(f"bench-page-home-{rows}")
        home_group = make_group(admin, f"Home page group {rows}", guidelines=rows)
        add_member(home_group, home_user, "Homebody", actor=admin)
        host = make_user(f"bench-page-host-{rows}")
        add_facilitator(home_group, host, "Host", actor=admin)
        open_meeting(home_group, host, occurrences=rows)

        # A facilitator dashboard: ``rows`` members, open reports, safety flags,
        # moderation steps and applications waiting.
        fac_user = make_user(f"bench-page-facilitator-{rows}")
        group = make_group(admin, f"Dashboard group {rows}", requires_screening=True)
        add_facilitator(group, fac_user, "Steward", actor=admin)
        meeting = open_meeting(group, fac_user)

        people = [
            add_member(
                group,
                make_user(f"bench-page-{rows}-member-{n + 1}"),
                f"Member {n + 1}",
                actor=admin,
            )
            for n in range(rows)
        ]
        for n, person in enumerate(people):
            message = meeting_services.message_post(
                meeting_id=meeting.pk,
                membership_id=person.pk,
                client_id=f"page-{rows}-{n}",
                body=f"Message number {n + 1}.",
            ).message
            moderation_services.report_file(
                actor=people[(n + 1) % rows].user,
                message=message,
                guideline_number=1,
                note="Please look.",
            )
            moderation_services.safety_flag_raise(
                actor=person.user, group=group, about=None, note="Worried."
            )
            moderation_services.action_take(
                membership=person,
                actor=fac_user,
                kind=ActionKind.WARN,
                guideline_number=1,
                reason="A reminder of the guidelines.",
            )
        from tests.factories import submitted_application

        for n in range(rows):
            submitted_application(group, make_user(f"bench-page-{rows}-applicant-{n + 1}"))

        board_group, board_reader = build_board(admin, BOARD_POSTS[rows])

    return PageSet(
        rows=rows,
        member_session=session_key(member),
        member_user=member,
        home_url=f"/groups/{home_group.slug}/home/",
        home_session=session_key(home_user),
        home_user=home_user,
        dashboard_url=f"/moderation/{group.slug}/",
        facilitator_session=session_key(fac_user, verified=True),
        facilitator_user=fac_user,
        members_url=f"/moderation/{group.slug}/members/",
        log_url=f"/moderation/{group.slug}/log/",
        queue_url=f"/screening/review/{group.slug}/",
        board_url=f"/groups/{board_group.slug}/board/",
        thread_url=f"/groups/{board_group.slug}/board/1/",
        board_session=session_key(board_reader.user),
        board_user=board_reader.user,
    )


def build_page_groups(admin: User, count: int) -> list[Group]:
    with cheap_passwords_and_quiet_email():
        return parallel(
            lambda n: make_group(admin, f"Reading group {n + 1:03d}"), list(range(count))
        )
