"""Times people type into forms. A ``datetime-local`` field holds a wall-clock time with no
zone; it means the zone of the person typing it. The browser says which
(static/js/local-time.js fills the hidden ``timezone`` field of a form marked
``data-timezone-form``); without JavaScript it is the site's ``TIME_ZONE``. Beside the field
the form names that zone (``data-reader-zone``), so nobody has to guess, and what is stored
is an aware datetime: the instant the person meant."""

import zoneinfo
from datetime import UTC, datetime

from django import forms
from django.conf import settings
from django.utils import dateformat, timezone
from django.utils.html import format_html


def moment_words(value: datetime) -> str:
    """A moment as a sentence says it, in the site's zone ("8 Dec 2026, 05:36 UTC"): the
    end of a mute or suspension in the words a refusal gives (pages rewrite <time> in the
    reader's zone; a refusal's text is plain)."""
    return dateformat.format(timezone.localtime(value), "j M Y, H:i e")


def zone_named(name: str) -> zoneinfo.ZoneInfo:
    """The zone the browser named, or the site's when it named none or nonsense."""
    try:
        return zoneinfo.ZoneInfo(name) if name else zoneinfo.ZoneInfo(settings.TIME_ZONE)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo(settings.TIME_ZONE)


def wall_time_in(value: datetime, zone: zoneinfo.ZoneInfo) -> datetime:
    """The clock time the person typed (which Django's field read in the site's zone), as
    the instant it is in ``zone``."""
    local = timezone.make_naive(value) if timezone.is_aware(value) else value
    return datetime.combine(local.date(), local.time(), tzinfo=zone)


class ZonedTimesForm(forms.Form):
    """A form whose ``datetime-local`` fields named in ``zoned_fields`` mean the person's own
    zone. Its template marks the ``<form>`` with ``data-timezone-form``."""

    zoned_fields: tuple[str, ...] = ()
    # Filled in by the browser (static/js/local-time.js) with the person's zone.
    timezone = forms.CharField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        super().__init__(*args, **kwargs)
        for name in self.zoned_fields:
            field = self.fields[name]
            # The site's zone until the browser says the person's (data-reader-zone).
            field.help_text = format_html(
                "In your time zone: <span data-reader-zone>{}</span>.{}{}",
                settings.TIME_ZONE,
                " " if field.help_text else "",
                field.help_text,
            )
            instant = self.initial.get(name, field.initial)
            if not self.is_bound and isinstance(instant, datetime) and timezone.is_aware(instant):
                # A suggested time (say "now"): the browser shows it in the person's zone.
                field.widget.attrs["data-instant"] = instant.astimezone(UTC).isoformat()

    def clean(self) -> dict:
        cleaned = super().clean()
        zone = zone_named(cleaned.get("timezone") or "")
        for name in self.zoned_fields:
            if cleaned.get(name) is not None:
                cleaned[name] = wall_time_in(cleaned[name], zone)
        return cleaned
