"""Demo data for `make run`: the same people and group every time, made through services."""

from datetime import datetime, time, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts import services as account_services
from accounts.models import User
from audit.events import Action
from audit.services import record_event
from groups import services as group_services
from groups.models import Group, Retention, Topic
from meetings import services as meeting_services
from meetings.models import Recurrence

# Published in the README and printed by seed_demo: demo accounts are never for real use.
DEMO_PASSWORD = "demo-password-123"

DEMO_ACCOUNTS = [
    ("admin", "demo-admin"),
    ("facilitator", "demo-facilitator"),
    ("member", "demo-member"),
]
DEMO_GROUP = "Evening Grief Circle"  # invitation-only: its facilitators add members
# Open to applications, with screening: the path a newcomer takes (sign up, apply, answer
# the questions, be admitted by the facilitator), beside the invitation-only group.
DEMO_OPEN_GROUP = "Carers' Open Circle"
TUESDAY = 1  # datetime.weekday()


def next_tuesday_evening(now: datetime) -> datetime:
    """7 pm on the next Tuesday after today, in the site's time zone."""
    today = timezone.localtime(now)
    days_ahead = (TUESDAY - today.weekday()) % 7 or 7
    day = (today + timedelta(days=days_ahead)).date()
    return datetime.combine(day, time(19, 0), tzinfo=today.tzinfo)


def ensure_open_drop_in(group: Group, *, facilitator: User) -> None:
    """A room open now, so a newcomer can try one straight away (`make run` seeds on every
    start; the room of an earlier start has closed by then)."""
    now = timezone.now()
    open_now = any(m.is_open(now) for m in group.meetings.filter(ends_at__gt=now))
    if not open_now:
        now = now.replace(second=0, microsecond=0)
        meeting_services.meeting_schedule(
            group=group,
            actor=facilitator,
            title="Drop-in (demo)",
            starts_at=now - timedelta(minutes=5),
            ends_at=now + timedelta(hours=3),
        )


@transaction.atomic
def seed_demo_data() -> list[tuple[str, str]]:
    users = {}
    created = []
    for role, username in DEMO_ACCOUNTS:
        user = User.objects.filter(username=username).first()
        if user is None:
            user = account_services.account_create(
                username=username, password=DEMO_PASSWORD, is_admin=role == "admin"
            )
            created.append(username)
        users[role] = user
    if created:
        record_event(action=Action.DEMO_DATA_SEEDED, extra={"accounts_created": len(created)})

    group = Group.objects.filter(name=DEMO_GROUP).first()
    if group is None:
        group = group_services.group_create(
            actor=users["admin"],
            name=DEMO_GROUP,
            topic=Topic.GRIEF,
            description="A gentle weekly space for people who have lost someone close.",
            eligibility="Adults (18+) who have been bereaved in the last two years.",
            meeting_rhythm="Tuesdays, 7–8:30 pm",
            meeting_time_zone=settings.TIME_ZONE,
            listed=True,
            requires_screening=False,
            capacity=12,
            retention=Retention.MEETING_END,
            crisis_resources="If you are in danger, call your local emergency number. "
            "Samaritans (UK): 116 123, any time.",
            guidelines=[
                "What is shared here stays here.",
                "Speak from your own experience; don't give advice unless asked.",
                "No names or details that could identify anyone outside the group.",
                "Be kind. Disagree gently, and never mock or judge.",
            ],
            agreement_text="I will keep everything said in this group confidential. I will "
            "not record, screenshot or share what other members say, or anything that could "
            "identify them.",
            agreement_summary="Members promise to keep what is shared confidential.",
        )
        facilitator = group_services.facilitator_appoint(
            group=group, actor=users["admin"], user=users["facilitator"]
        )
        group_services.membership_take_place(
            actor=facilitator.user,
            group=facilitator.group,
            pseudonym="Willow",
            typed_name="Willow",
            guidelines_acknowledged=True,
        )
        member = group_services.membership_create(
            group=group, user=users["member"], actor=users["facilitator"], reason="demo"
        )
        group_services.membership_take_place(
            actor=member.user,
            group=member.group,
            pseudonym="River",
            typed_name="River",
            guidelines_acknowledged=True,
        )
        # The meetings the rhythm above promises: the next four Tuesdays, 7–8:30 pm.
        first = next_tuesday_evening(timezone.now())
        meeting_services.meeting_schedule(
            group=group,
            actor=users["facilitator"],
            title="Tuesday meeting",
            starts_at=first,
            ends_at=first + timedelta(minutes=90),
            recurrence=Recurrence.WEEKLY,
            occurrences=4,
        )
    ensure_open_drop_in(group, facilitator=users["facilitator"])
    ensure_open_group(admin=users["admin"], facilitator=users["facilitator"])
    return DEMO_ACCOUNTS


def ensure_open_group(*, admin: User, facilitator: User) -> Group:
    """The group anyone signed in can apply to (with the default screening questions),
    facilitated by the demo facilitator, who reviews the applications."""
    group = Group.objects.filter(name=DEMO_OPEN_GROUP).first()
    if group is not None:
        return group
    group = group_services.group_create(
        actor=admin,
        name=DEMO_OPEN_GROUP,
        topic=Topic.CARERS,
        description="A fortnightly evening for people caring for a relative or friend.",
        eligibility="Unpaid carers, 18 or over.",
        meeting_rhythm="Every other Thursday, 8–9 pm",
        meeting_time_zone=settings.TIME_ZONE,
        listed=True,
        requires_screening=True,
        capacity=10,
        retention=Retention.MEETING_END,
        crisis_resources="If you are in danger, call your local emergency number. "
        "Carers UK helpline: 0808 808 7777.",
        guidelines=[
            "What is shared here stays here.",
            "Speak from your own experience.",
            "Be kind, and let everyone have a turn.",
        ],
        agreement_text="I will keep everything said in this group confidential, and will "
        "not share anything that could identify another member.",
        agreement_summary="Members promise to keep what is shared confidential.",
    )
    place = group_services.facilitator_appoint(group=group, actor=admin, user=facilitator)
    group_services.membership_take_place(
        actor=place.user,
        group=group,
        pseudonym="Willow",
        typed_name="Willow",
        guidelines_acknowledged=True,
    )
    return group
