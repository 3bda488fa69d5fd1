"""supportgroups/templatetags/when.py list_date: what ``|date`` draws, more cheaply."""

from datetime import UTC, date, datetime, timedelta

from django.template import Context, Template
from django.utils import timezone


def _drawn(filter_name: str, value, fmt: str) -> str:  # noqa: ANN001
    template = Template(f'{{% load when %}}{{{{ value|{filter_name}:"{fmt}" }}}}')
    return template.render(Context({"value": value}))


def test_the_same_text_as_the_date_filter_in_any_zone():
    start = datetime(2026, 1, 1, 0, 5, 9, 123_456, tzinfo=UTC)
    moments = [start + timedelta(days=37 * n, hours=5 * n, minutes=11 * n) for n in range(12)]
    for zone in ("UTC", "Pacific/Auckland", "America/St_Johns"):
        with timezone.override(zone):
            for moment in moments:
                for fmt in ("c", "j M Y", "j M H:i", "D j F"):
                    assert _drawn("list_date", moment, fmt) == _drawn("date", moment, fmt), (
                        zone,
                        moment,
                        fmt,
                    )


def test_nothing_and_dates_are_drawn_as_the_date_filter_draws_them():
    for value in (None, "", date(2026, 3, 4)):
        for fmt in ("j M Y", "c"):
            assert _drawn("list_date", value, fmt) == _drawn("date", value, fmt)
