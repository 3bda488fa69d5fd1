"""Reading the log for admins: filters, keyset pages, access reviews and security signals."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q, QuerySet

from audit.models import ChainCheckpoint, Event

PAGE_SIZE = 50


@dataclass(frozen=True)
class EventFilters:
    actor_id: int | None = None
    subject_id: int | None = None
    involving_id: int | None = None  # actor or subject
    actions: tuple[int, ...] = ()
    group_id: int | None = None
    target_type: str = ""
    target_id: str = ""
    since: datetime | None = None
    until: datetime | None = None
    ip_index: str = ""

    def used(self) -> list[str]:
        """Names of the filters in use (recorded when an admin views the log)."""
        return [name for name, value in self.__dict__.items() if value not in (None, "", ())]


def events_filtered(filters: EventFilters) -> QuerySet[Event]:
    events = Event.objects.all()
    if filters.actor_id is not None:
        events = events.filter(actor_id=filters.actor_id)
    if filters.subject_id is not None:
        events = events.filter(subject_id=filters.subject_id)
    if filters.involving_id is not None:
        events = events.filter(
            Q(actor_id=filters.involving_id) | Q(subject_id=filters.involving_id)
        )
    if filters.actions:
        events = events.filter(action__in=filters.actions)
    if filters.group_id is not None:
        events = events.filter(group_id=filters.group_id)
    if filters.target_type:
        events = events.filter(target_type=filters.target_type)
    if filters.target_id:
        events = events.filter(target_id=filters.target_id)
    if filters.since is not None:
        events = events.filter(created_at__gte=filters.since)
    if filters.until is not None:
        events = events.filter(created_at__lt=filters.until)
    if filters.ip_index:
        events = events.filter(ip_index=filters.ip_index)
    return events


def events_page(
    events: QuerySet[Event], *, before_seq: int | None
) -> tuple[list[Event], int | None]:
    """Newest first, PAGE_SIZE at a time, by seq (keyset: as fast on page 1,000 as on 1)."""
    if before_seq is not None:
        events = events.filter(seq__lt=before_seq)
    rows = list(events.order_by("-seq")[: PAGE_SIZE + 1])
    next_before = rows[PAGE_SIZE - 1].seq if len(rows) > PAGE_SIZE else None
    return rows[:PAGE_SIZE], next_before


def last_seq() -> int:
    """The newest row's place in the chain (0 for an empty log)."""
    return Event.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


def latest_checkpoint() -> ChainCheckpoint | None:
    return ChainCheckpoint.objects.order_by("-checked_at").first()


def ip_for_index(ip_index: str) -> str | None:
    """The address behind a blind index, read from one event that stored it (admins only)."""
    if not ip_index:
        return None
    # A row with a blind index always stored its address (the encrypted column itself
    # cannot be filtered on).
    event = Event.objects.filter(ip_index=ip_index).only("ip").first()
    return event.ip if event else None
