"""What a security notice says to a member: the app's own words, never a group's name.

A notice is written for people in any of the affected groups at once, so it names
none of them (a name in an inbox or on a shared screen can say more than the breach
itself), and it carries no admin's free text, which could."""

from django.template.loader import render_to_string

from audit.events import Action
from audit.models import Event
from console.models import NOTICE_STEP_WORDS, Incident

EMAIL_SUBJECT = "A security notice about your account"

_STEP_ACTIONS = {
    "signed_out": Action.INCIDENT_SESSIONS_ENDED,
    "credentials_renewed": Action.INCIDENT_CREDENTIALS_RENEWAL_REQUIRED,
    "meetings_on_hold": Action.INCIDENT_MEETINGS_HELD,
    "keys_rotated": Action.ENCRYPTION_KEYS_ROTATED,
}


def steps_taken(incident: Incident) -> list[str]:
    done = set(
        Event.objects.filter(
            target_type=Incident._meta.label_lower, target_id=str(incident.pk)
        ).values_list("action", flat=True)
    )
    return [code for code, action in _STEP_ACTIONS.items() if int(action) in done]


def notice_words(*, incident: Incident, steps: list[str]) -> dict:
    """The parts of a notice, for the page banner and the email alike."""
    return {
        "detected_at": incident.detected_at,
        "steps": [NOTICE_STEP_WORDS[code] for code in steps if code in NOTICE_STEP_WORDS],
    }


def notice_text(*, incident: Incident, steps: list[str]) -> str:
    """The notice as plain text (the email's body uses the same template)."""
    return render_to_string(
        "console/_notice_text.txt", {"notice": notice_words(incident=incident, steps=steps)}
    )
