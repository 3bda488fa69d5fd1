"""What console keeps about a member, for their export (registered in ``ConsoleConfig``)."""

from typing import Any

from console.models import SecurityNotice


def security_notices_of(user) -> list[dict[str, Any]]:  # noqa: ANN001
    """The security notices the person was sent, in the words they were shown (which
    never name a group or carry an admin's own text)."""
    return [
        {
            "sent": notice.created_at.isoformat(),
            "incident_detected": notice.incident.detected_at.isoformat(),
            "what_was_done": notice.step_words,
            "also_emailed": notice.emailed,
            "read": notice.read_at.isoformat() if notice.read_at else None,
        }
        for notice in SecurityNotice.objects.filter(user=user)
        .select_related("incident")
        .order_by("created_at", "pk")
    ]
