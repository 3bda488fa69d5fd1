"""What a disclosure package holds, and the file itself.

One function reads the items from the records (what the member previews, and what a
legal disclosure holds); one writes the file. The file is canonical JSON (keys in a
fixed order, UTF-8), so its SHA-256 identifies it.
"""

import hashlib
import json
from datetime import date
from typing import Any

from django.utils import dateformat, timezone

from accounts.models import User
from groups.models import Group
from meetings.models import Attendance
from privacy.models import Item
from screening.models import Application, ApplicationStatus
from supportgroups.mail import confirmed_address

NOT_GIVEN = "not given"
# A day as every page shows one ("4 Dec 2026"); the file keeps ISO dates.
PAGE_DATE_FORMAT = "j M Y"


def item_content(
    *, user: User, group: Group | None, items: list[str], summary: str | None
) -> dict[str, Any]:
    """Exactly the chosen items, read now from the records (decrypted)."""
    content: dict[str, Any] = {}
    for item in items:
        if item == Item.CONTACT_DETAILS:
            content[item] = {
                "recovery_email": confirmed_address(user) or NOT_GIVEN,
                "phone": user.phone or NOT_GIVEN,
                "emergency_contact": user.emergency_contact or NOT_GIVEN,
            }
        elif item == Item.SCREENING_ANSWERS:
            content[item] = _screening_answers(user, group)
        elif item == Item.ATTENDANCE:
            content[item] = [
                # The day in the site's zone, as the members' list shows "last attended".
                {
                    "meeting": a.meeting.title,
                    "date": timezone.localdate(a.meeting.starts_at).isoformat(),
                }
                for a in Attendance.objects.filter(membership__user=user, meeting__group=group)
                .select_related("meeting")
                .order_by("meeting__starts_at")
            ]
        elif item == Item.SUMMARY:
            content[item] = summary or ""
    return content


def _screening_answers(user: User, group: Group | None) -> list[dict[str, Any]]:
    """The answers of the person's latest sent application to the group (none once purged)."""
    application = (
        Application.objects.filter(applicant=user, group=group, purged_at__isnull=True)
        .exclude(status=ApplicationStatus.DRAFT)
        .select_related("questionnaire")
        .order_by("-submitted_at", "-pk")
        .first()
    )
    if application is None or not application.answers:
        return []
    answers = application.answers
    return [
        {"question": q.text, "answer": answers.get(str(q.pk))}
        for q in application.questionnaire.questions.all()
        if answers.get(str(q.pk)) not in (None, "", [])
    ]


def readable_lines(value: Any) -> list[str]:
    """One item's content as lines a person reads (a preview, the accounting): the file's
    values, with its ISO dates written as the site writes a day."""
    if isinstance(value, dict):
        return [
            f"{key.replace('_', ' ').capitalize()}: {_answer_text(value[key])}"
            for key in sorted(value)
        ]
    if isinstance(value, list):
        return [
            " — ".join(_answer_text(v) for v in row.values())
            if isinstance(row, dict)
            else _answer_text(row)
            for row in value
        ]
    return [_answer_text(value)] if value else []


def _answer_text(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(map(_answer_text, value))
    if isinstance(value, str) and len(value) == 10:
        try:
            return dateformat.format(date.fromisoformat(value), PAGE_DATE_FORMAT)
        except ValueError:
            pass
    return str(value)


def content_sha256(content: dict[str, Any]) -> str:
    """The fingerprint of what a member read: a consent is approved for this exact content."""
    return hashlib.sha256(_canonical(content)).hexdigest()


def package_file(*, header: dict[str, Any], content: dict[str, Any]) -> bytes:
    """The file handed over: who it is for and why, then exactly the items."""
    return _canonical({"disclosure": header, "items": content})


def package_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _canonical(value: Any) -> bytes:
    return (json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True) + "\n").encode()
