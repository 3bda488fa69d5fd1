"""Times on every page in one convention (issue 21): the reader's own zone, labelled, with the
exact UTC instant in ``<time datetime>`` and on hover. The server writes the time in UTC with
its label; static/js/local-time.js rewrites it in the reader's zone with that zone's label."""

from datetime import UTC, datetime, timedelta

from django import template
from django.template.defaultfilters import date, timesince
from django.utils import timezone
from django.utils.dates import MONTHS_3
from django.utils.html import format_html
from django.utils.safestring import mark_safe

register = template.Library()

UTC_FORMATS = {
    "full": "%a %d %b %Y, %H:%M UTC",
    "date": "%d %b %Y",
    "time": "%H:%M UTC",
}


@register.simple_tag
def when(value: datetime | None, style: str = "full") -> str:
    """``{% when event.created_at %}`` (``"time"`` for the time alone, ``"date"`` for the day)."""
    if value is None:
        return ""
    utc = value.astimezone(UTC) if timezone.is_aware(value) else value
    instant = utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    data = {"full": "", "time": " data-time-only", "date": " data-date-only"}[style]
    return format_html(
        '<time datetime="{}" title="{}" data-local{}>{}</time>',
        instant,
        utc.strftime("%Y-%m-%d %H:%M:%S UTC"),
        mark_safe(data),  # noqa: S308 - one of three constant attribute strings above
        utc.strftime(UTC_FORMATS[style]),
    )


@register.filter
def ago(value: datetime | None) -> str:
    """ "5 minutes ago", but "just now" for under a minute (never "0 minutes ago")."""
    if value is None:
        return ""
    if timezone.now() - value < timedelta(minutes=1):
        return "just now"
    return f"{timesince(value)} ago"


# What ``|date`` gives for the formats the long lists use, without its per-value format
# machinery (a sixth of the moderation log's time at 100 rows, bench.profile_pages).
# English month names: USE_I18N is off, as for board_tags.post_time.
_MONTHS = {n: name.title() for n, name in MONTHS_3.items()}
_SHORT_FORMATS = {
    "j M Y": lambda t: f"{t.day} {_MONTHS[t.month]} {t.year:04d}",
    "j M H:i": lambda t: f"{t.day} {_MONTHS[t.month]} {t.hour:02d}:{t.minute:02d}",
}


@register.filter(expects_localtime=True)
def list_date(value, arg: str):  # noqa: ANN001, ANN201
    """``{{ value|list_date:"j M Y" }}``: what ``{{ value|date:"j M Y" }}`` gives, for
    "j M Y" and "j M H:i" cheaply (``|date`` for any other format); "c" is the ISO form
    of ``<time datetime>``."""
    if value in (None, ""):
        return ""
    if isinstance(value, datetime):
        if arg == "c":
            return value.isoformat()
        short = _SHORT_FORMATS.get(arg)
        if short is not None:
            return short(value)
    return date(value, arg)
