"""Breach response: every step an admin takes on a security incident.

Each step is one service, re-checks that the actor is an admin, writes its audit event
(target: the incident, so the incident's timeline is read from the log) in the same
transaction, and reaches sockets and inboxes only after commit. The work itself is done
by the services of the apps that own the data (accounts, meetings, supportgroups)."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from accounts.selectors import user_is_admin_now
from accounts.services import credentials_renewal_require, sessions_end_by_admin
from audit.events import Action
from audit.services import record_event
from console import notices
from console.models import Incident, KeyRotation, SecurityNotice
from console.selectors import incident_members, incident_staff
from groups.models import Group
from meetings.services import meetings_hold, meetings_hold_lift
from supportgroups.crypto import count_encrypted_rows, rotate_next_batch
from supportgroups.errors import ServiceError
from supportgroups.mail import email_body, email_people_on_commit

ROTATION_BATCH_SIZE = 500


class IncidentError(ServiceError):
    """A refused step of a breach response."""


def _require_admin(actor: User) -> None:
    if not user_is_admin_now(actor):
        raise IncidentError("not_admin", "Only site admins can do that.")


def _open_incident(incident: Incident) -> Incident:
    """The incident, locked for this step; a closed incident takes no more steps."""
    incident = Incident.objects.select_for_update(no_key=True).get(pk=incident.pk)
    if incident.closed_at is not None:
        raise IncidentError("incident_closed", "This incident is closed.")
    return incident


@transaction.atomic
def incident_open(
    *,
    actor: User,
    title: str,
    description: str,
    detected_at: datetime,
    users: list[User],
    groups: list[Group],
    ip: str | None,
) -> Incident:
    _require_admin(actor)
    if detected_at > timezone.now():
        raise IncidentError(
            "detected_in_future",
            "When it was detected can't be in the future.",
            field="detected_at",
        )
    incident = Incident.objects.create(
        title=title,
        description=description,
        detected_at=detected_at,
        opened_by=actor,
    )
    incident.affected_users.set(users)
    incident.affected_groups.set(groups)
    record_event(
        action=Action.INCIDENT_OPENED,
        actor=actor,
        target=incident,
        ip=ip,
        extra={"accounts": len(users), "groups": len(groups)},
    )
    return incident


@transaction.atomic
def incident_sign_out(
    *, actor: User, incident: Incident, everyone: bool, ip: str | None, keep_session_key: str = ""
) -> dict[str, int]:
    """Sign out every affected account (or everyone but the acting admin's own session)
    on every device; their open sockets close at once."""
    _require_admin(actor)
    incident = _open_incident(incident)
    users = None if everyone else list(incident.affected_users.all())
    ended = sessions_end_by_admin(
        actor=actor, users=users, ip=ip, keep_session_key=keep_session_key, cause=incident
    )
    record_event(
        action=Action.INCIDENT_SESSIONS_ENDED,
        actor=actor,
        target=incident,
        ip=ip,
        extra={"everyone": everyone, **ended},
    )
    return ended


@transaction.atomic
def incident_require_credential_renewal(*, actor: User, incident: Incident, ip: str | None) -> int:
    """The affected staff (admins and facilitators among the affected accounts) must
    choose a new password and set up two-factor again at their next sign-in."""
    _require_admin(actor)
    incident = _open_incident(incident)
    staff = incident_staff(incident, actor=actor)
    if not staff:
        raise IncidentError(
            "no_staff", "None of the affected accounts is an admin or a facilitator."
        )
    count = credentials_renewal_require(actor=actor, users=staff, ip=ip, cause=incident)
    record_event(
        action=Action.INCIDENT_CREDENTIALS_RENEWAL_REQUIRED,
        actor=actor,
        target=incident,
        ip=ip,
        extra={"accounts": count},
    )
    return count


@transaction.atomic
def incident_hold_meetings(*, actor: User, incident: Incident, ip: str | None) -> int:
    """Put the affected groups' meetings on hold (open rooms close, none opens)."""
    _require_admin(actor)
    incident = _open_incident(incident)
    already = set(
        incident.meeting_holds.filter(lifted_at__isnull=True).values_list("group_id", flat=True)
    )
    groups = [g for g in incident.affected_groups.all() if g.pk not in already]
    if not groups:
        raise IncidentError(
            "nothing_to_hold", "No affected group is left whose meetings are not on hold."
        )
    holds = meetings_hold(actor=actor, groups=groups, ip=ip, cause=incident)
    incident.meeting_holds.add(*holds)
    return len(holds)


@transaction.atomic
def incident_lift_hold(*, actor: User, incident: Incident, ip: str | None) -> int:
    _require_admin(actor)
    incident = Incident.objects.select_for_update(no_key=True).get(pk=incident.pk)
    holds = list(incident.meeting_holds.filter(lifted_at__isnull=True))
    if not holds:
        raise IncidentError("no_hold", "No meetings are on hold for this incident.")
    return meetings_hold_lift(actor=actor, holds=holds, ip=ip, cause=incident)


@transaction.atomic
def incident_key_rotation_start(*, actor: User, incident: Incident, ip: str | None) -> KeyRotation:
    """Begin re-encrypting everything with the first key of FIELD_ENCRYPTION_KEYS (the
    admin put a new key first and restarted every process). A rotation already under way
    for the incident is continued rather than started twice."""
    _require_admin(actor)
    incident = _open_incident(incident)
    running = incident.rotations.filter(finished_at__isnull=True).first()
    if running is not None:
        return running
    record_event(action=Action.INCIDENT_KEY_ROTATION_STARTED, actor=actor, target=incident, ip=ip)
    # Counted after the event above, whose (encrypted) address is a row to check too.
    return KeyRotation.objects.create(
        incident=incident, started_by=actor, total_rows=count_encrypted_rows()
    )


def incident_key_rotation_step(
    *, actor: User, rotation: KeyRotation, batch_size: int = ROTATION_BATCH_SIZE
) -> KeyRotation:
    """Re-encrypt the next batch and move the rotation's position on; the last batch
    records the rotation in the log (as ``rotate_encryption_keys`` does).

    The batch commits on its own (like the command's); the position is saved in the
    same transaction, under a lock on the rotation, so two tabs never do one batch twice
    and a closed tab, a crash or a restart loses nothing: the next step goes on."""
    _require_admin(actor)
    with transaction.atomic():
        rotation = KeyRotation.objects.select_for_update(no_key=True).get(pk=rotation.pk)
        if rotation.finished_at is not None:
            return rotation
        step = rotate_next_batch(
            model_label=rotation.position_model,
            after_pk=rotation.position_pk,
            batch_size=batch_size,
        )
        rotation.rows_seen += step.seen
        rotation.rows_changed += step.changed
        rotation.position_model = step.model_label
        rotation.position_pk = step.last_pk
        fields = ["rows_seen", "rows_changed", "position_model", "position_pk"]
        if step.done:
            rotation.finished_at = timezone.now()
            # Rows added while it ran are counted as they are seen.
            rotation.total_rows = max(rotation.total_rows, rotation.rows_seen)
            fields += ["finished_at", "total_rows"]
            record_event(
                action=Action.ENCRYPTION_KEYS_ROTATED,
                actor=actor,
                target=rotation.incident,
                extra={"rows_reencrypted": rotation.rows_changed, "batch_size": batch_size},
            )
        rotation.save(update_fields=fields)
    return rotation


@transaction.atomic
def incident_notify(*, actor: User, incident: Incident, ip: str | None) -> dict[str, int]:
    """Tell every affected person (the affected accounts and the current members of the
    affected groups) in the app, and by email where they confirmed a recovery address.
    The words are the app's own and never name a group. Someone already told about this
    incident is not told again."""
    _require_admin(actor)
    incident = _open_incident(incident)
    steps = notices.steps_taken(incident)
    already = set(incident.notices.values_list("user_id", flat=True))
    people = [person for person in incident_members(incident) if person.pk not in already]
    if not people:
        raise IncidentError("nothing_to_send", "Everyone affected has been told already.")
    # Whether a notice was emailed is known only once the mail server took it, after
    # this commits: each notice starts unemailed and security_notice_emailed marks it.
    queued = {
        person.pk
        for person in email_people_on_commit(
            people=people,
            subject=notices.EMAIL_SUBJECT,
            body=email_body(
                "console/email/security_notice.txt",
                {"notice": notices.notice_words(incident=incident, steps=steps)},
            ),
            on_sent=lambda person: security_notice_emailed(
                actor=actor, incident=incident, person=person
            ),
        )
    }
    for person in people:
        SecurityNotice.objects.create(incident=incident, user=person, steps=steps)
        record_event(
            action=Action.SECURITY_NOTICE_SENT,
            actor=actor,
            subject=person,
            target=incident,
            extra={"email_queued": person.pk in queued},
        )
    record_event(
        action=Action.INCIDENT_MEMBERS_NOTIFIED,
        actor=actor,
        target=incident,
        ip=ip,
        extra={"people": len(people), "emails_queued": len(queued)},
    )
    return {"people": len(people), "emails_queued": len(queued)}


@transaction.atomic
def security_notice_emailed(*, actor: User, incident: Incident, person: User) -> None:
    """After incident_notify committed: the mail server accepted this person's notice
    email. Only now does their notice say it was emailed (the export, the report's
    counts); an address the server refused leaves it unemailed (supportgroups.mail logs
    the failure)."""
    SecurityNotice.objects.filter(incident=incident, user=person).update(emailed=True)
    record_event(
        action=Action.SECURITY_NOTICE_EMAILED, actor=actor, subject=person, target=incident
    )


@transaction.atomic
def security_notice_read(*, actor: User, notice: SecurityNotice, ip: str | None) -> None:
    """The person marks their notice read: it leaves their pages."""
    notice = SecurityNotice.objects.select_for_update(no_key=True).get(pk=notice.pk)
    if notice.user_id != actor.pk:
        raise IncidentError("not_yours", "That notice is not yours.")
    if notice.read_at is None:
        notice.read_at = timezone.now()
        notice.save(update_fields=["read_at"])
        record_event(
            action=Action.SECURITY_NOTICE_READ,
            actor=actor,
            subject=actor,
            target=notice.incident,
            ip=ip,
        )


@transaction.atomic
def incident_report_exported(*, actor: User, incident: Incident, ip: str | None) -> None:
    _require_admin(actor)
    record_event(action=Action.INCIDENT_REPORT_EXPORTED, actor=actor, target=incident, ip=ip)


@transaction.atomic
def incident_regulator_notified(
    *, actor: User, incident: Incident, notified_at: datetime, reference: str, ip: str | None
) -> None:
    """Record when the regulator was told (and their reference), which meets the 72-hour
    deadline if it was in time."""
    _require_admin(actor)
    incident = _open_incident(incident)
    if notified_at > timezone.now():
        raise IncidentError("in_future", "That time is in the future.", field="notified_at")
    if notified_at < incident.detected_at:
        raise IncidentError(
            "before_detection", "That is before the incident was detected.", field="notified_at"
        )
    incident.regulator_notified_at = notified_at
    incident.regulator_reference = reference or None
    incident.save(update_fields=["regulator_notified_at", "regulator_reference"])
    record_event(
        action=Action.INCIDENT_REGULATOR_NOTIFIED,
        actor=actor,
        target=incident,
        ip=ip,
        extra={"within_deadline": notified_at <= incident.regulator_deadline},
    )


@transaction.atomic
def incident_close(*, actor: User, incident: Incident, ip: str | None) -> None:
    _require_admin(actor)
    incident = _open_incident(incident)
    if incident.meeting_holds.filter(lifted_at__isnull=True).exists():
        raise IncidentError(
            "hold_in_force", "Lift the hold on meetings before closing the incident."
        )
    incident.closed_at = timezone.now()
    incident.save(update_fields=["closed_at"])
    record_event(action=Action.INCIDENT_CLOSED, actor=actor, target=incident, ip=ip)
