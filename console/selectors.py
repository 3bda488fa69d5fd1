"""Reading the log for the admins' security signals, with the accounts it names."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, QuerySet
from django.utils import timezone

from accounts.models import BackupCodeDevice, TOTPDevice
from audit.events import Action
from audit.models import Event


@dataclass(frozen=True)
class Signals:
    failed_logins: int
    failed_by_ip: list[tuple[str, int]]  # (ip blind index, count)
    failed_by_account: list[tuple[int, int]]  # (user id, count)
    rate_limit_hits: int
    rate_limits_by_ip: list[tuple[str, int]]
    throttled_accounts: list[tuple[int, int]]  # (user id, refused sign-ins)
    throttled_by_ip: list[tuple[str, int]]
    locked_devices: int
    two_factor_disabled: list[Event]
    appointments: list[Event]
    reveals: list[Event]
    since: datetime


def security_signals(*, now: datetime | None = None, hours: int = 24) -> Signals:
    now = now or timezone.now()
    since = now - timedelta(hours=hours)
    # Bounded on both sides, so asking about an earlier moment ignores what came after it.
    recent = Event.objects.filter(created_at__gte=since, created_at__lte=now)
    failed = recent.filter(action=Action.LOGIN_FAILED)
    limited = recent.filter(action=Action.RATE_LIMIT_HIT)
    throttled = recent.filter(action=Action.LOGIN_THROTTLED)
    locked = sum(
        model.objects.filter(throttling_failure_count__gte=3).count()
        for model in (TOTPDevice, BackupCodeDevice)
    )
    return Signals(
        failed_logins=failed.count(),
        failed_by_ip=_top(failed.exclude(ip_index=""), "ip_index"),
        failed_by_account=_top(failed.exclude(subject_id=None), "subject_id"),
        rate_limit_hits=limited.count(),
        rate_limits_by_ip=_top(limited.exclude(ip_index=""), "ip_index"),
        throttled_accounts=_top(throttled.exclude(subject_id=None), "subject_id"),
        throttled_by_ip=_top(throttled.exclude(ip_index=""), "ip_index"),
        locked_devices=locked,
        two_factor_disabled=list(
            recent.filter(action=Action.TWO_FACTOR_DISABLED).order_by("-seq")[:20]
        ),
        appointments=list(
            recent.filter(
                action__in=[Action.FACILITATOR_APPOINTED, Action.ADMIN_APPOINTED]
            ).order_by("-seq")[:20]
        ),
        reveals=list(recent.filter(action=Action.CONTACT_DETAILS_REVEALED).order_by("-seq")[:20]),
        since=since,
    )


def _top(events: QuerySet[Event], field: str, limit: int = 10) -> list[tuple]:
    return list(events.values_list(field).annotate(n=Count("pk")).order_by("-n")[:limit])
