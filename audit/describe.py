"""Audit events in plain language.

``describe_for_subject`` is what a member reads about themselves under "Who has seen my
data": it never names the person who acted (other than "you"), only their role.
"""

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from audit.events import Action
from audit.models import Event

# What the member reads; "{group}" is filled in where the event names a group.
_SUBJECT_TEXT = {
    Action.ACCOUNT_CREATED: "Your account was created.",
    Action.LOGIN_SUCCEEDED: "You signed in.",
    Action.LOGIN_FAILED: "Someone tried to sign in to your account with a wrong password.",
    Action.LOGIN_THROTTLED: (
        "Signing in to your account was paused for a few minutes after too many failed tries."
    ),
    Action.LOGGED_OUT: "You signed out.",
    Action.QUICK_EXIT: "You used “Leave quickly”.",
    Action.PASSWORD_CHANGED: "Your password was changed.",
    Action.PASSWORD_RESET: "Your password was reset.",
    Action.EMAIL_VERIFIED: "Your recovery email was confirmed.",
    Action.CONTACT_DETAILS_CHANGED: "Your contact details were changed.",
    Action.TWO_FACTOR_ENABLED: "Two-factor authentication was set up (or new backup codes made).",
    Action.TWO_FACTOR_DISABLED: "Two-factor authentication was turned off.",
    Action.TWO_FACTOR_FAILED: "A wrong two-factor code was entered for your account.",
    Action.BACKUP_CODE_USED: "One of your backup codes was used.",
    Action.SESSION_REVOKED: "Sessions of yours were signed out.",
    Action.CREDENTIALS_RENEWAL_REQUIRED: (
        "An administrator asked you to choose a new password and set up two-factor "
        "authentication again, after a security problem."
    ),
    Action.SECURITY_NOTICE_SENT: "We sent you a security notice.",
    Action.SECURITY_NOTICE_EMAILED: "We emailed you a security notice.",
    Action.SECURITY_NOTICE_READ: "You read a security notice.",
    Action.DATA_EXPORTED: "You downloaded a copy of your data.",
    Action.ACCOUNT_DELETED: "Your account was deleted.",
    Action.MEMBERSHIP_CREATED: "You were given a place in {group}.",
    Action.MEMBERSHIP_CHANGED: "Your membership of {group} changed.",
    Action.PSEUDONYM_CHANGED: "Your name in {group} was changed.",
    Action.AGREEMENT_SIGNED: "You signed the confidentiality agreement of {group}.",
    Action.MEMBER_LEFT: "You left {group}.",
    Action.APPLICATION_SUBMITTED: "Your application to {group} was sent.",
    Action.APPLICATION_DECIDED: "A decision was made on your application to {group}.",
    Action.APPLICATION_STARTED: "You started an application to {group}.",
    Action.APPLICATION_INFO_REQUESTED: "The facilitators of {group} asked you something.",
    Action.APPLICATION_INFO_PROVIDED: "You answered the facilitators of {group}.",
    Action.APPLICATION_WITHDRAWN: "You withdrew your application to {group}.",
    Action.MODERATION_ACTION_TAKEN: "A facilitator of {group} took a moderation step about you.",
    Action.E2EE_DEVICE_REGISTERED: (
        "One of your browsers was set up to read the encrypted meetings of {group}. If that "
        "was not you, sign that browser out under Your sessions and change your password."
    ),
    Action.E2EE_DEVICE_RETIRED: (
        "One of your browsers replaced its key for the encrypted meetings of {group} with a "
        "new one; the keys shared with the old one were deleted."
    ),
    # Looks at your data by someone else:
    Action.APPLICATION_ANSWERS_VIEWED: "A facilitator of {group} read your application answers.",
    Action.CONTACT_DETAILS_REVEALED: (
        "A facilitator of {group} opened your emergency contact details, after writing a reason."
    ),
    Action.MEMBERSHIP_IDENTITY_VIEWED: (
        "An administrator looked up which account is behind your place in {group}."
    ),
    # Sharing outside the app (the details are under "Shared outside this app"):
    Action.CONSENT_REQUESTED: "A facilitator of {group} asked for your consent to share information about you.",
    Action.CONSENT_APPROVED: "You agreed to a request to share information about you.",
    Action.CONSENT_DECLINED: "You declined a request to share information about you.",
    Action.CONSENT_WITHDRAWN: "Your consent to share information about you was withdrawn.",
    Action.DISCLOSURE_PACKAGE_PRODUCED: (
        "A facilitator of {group} shared information about you outside this site, with your consent."
    ),
    Action.LEGAL_DISCLOSURE_MADE: (
        "An administrator shared information about you outside this site, as the law requires."
    ),
    Action.DISCLOSURE_MEMBER_NOTIFIED: "You were told about information shared about you.",
}


@dataclass(frozen=True)
class DescribedEvent:
    when: datetime  # the latest, for a run of repeats
    text: str
    is_access: bool
    times: int = 1
    since: datetime | None = None  # the earliest of a run of repeats
    # For a look at the person's data: who looked at what (never shown, see distinct_looks).
    looker: tuple | None = None


# Repeats closer together than this read as one visit (see runs_of_the_same).
REPEAT_GAP = timedelta(hours=1)
# The same person opening the same thing again within this of their last load is still the
# same look: a facilitator reviewing an application reloads it after every note, question
# and decision (see distinct_looks).
LOOK_SESSION = timedelta(minutes=30)


def distinct_looks(described: list[DescribedEvent]) -> list[DescribedEvent]:
    """Looks at the person's data, counted as a person would count them: the same person
    opening the same item again and again within a review session (each load no more
    than ``LOOK_SESSION`` after the one before) is one look, not one per reload. Another
    person, another item, or a later session is another look. The audit log keeps every
    load; only this reading of it is merged. ``described`` is newest first."""
    looks: list[DescribedEvent] = []
    latest_look_of: dict[tuple, int] = {}  # looker -> index in looks of their latest look
    for item in described:
        index = latest_look_of.get(item.looker) if item.looker is not None else None
        if index is not None and (looks[index].since or looks[index].when) - item.when <= (
            LOOK_SESSION
        ):
            looks[index] = replace(looks[index], since=item.when)
            continue
        if item.looker is not None:
            latest_look_of[item.looker] = len(looks)
        looks.append(item)
    return looks


def runs_of_the_same(described: list[DescribedEvent]) -> list[DescribedEvent]:
    """The same event repeated close together, shown once with how many times and since
    when. A facilitator reading an application records a look each time the page loads
    (every note they add reloads it): eight lines in two minutes read like eight people
    prying. The log itself keeps every one. ``described`` is newest first."""
    runs: list[DescribedEvent] = []
    for item in described:
        last = runs[-1] if runs else None
        if (
            last is not None
            and (item.text, item.is_access) == (last.text, last.is_access)
            and (last.since or last.when) - item.when <= REPEAT_GAP
        ):
            earliest = min(last.since or last.when, item.since or item.when)
            runs[-1] = replace(last, times=last.times + 1, since=earliest)
        else:
            runs.append(item)
    return runs


def describe_for_subject(event: Event, *, viewer, group_names: dict[int, str] | None = None):  # noqa: ANN001
    action = event.action_enum
    template = _SUBJECT_TEXT.get(action, f"{action.label}.")
    group = (group_names or {}).get(event.group_id, "a group") if event.group_id else "a group"
    text = template.format(group=group)
    if action.is_access and event.actor_id == viewer.pk and action != Action.DATA_EXPORTED:
        text = "You looked at this yourself."
    if action == Action.LOGIN_FAILED and event.actor_id == viewer.pk:
        text = "You typed a wrong password when asked to confirm it was you."
    looker = (
        (event.actor_id, event.action, event.target_type, event.target_id, event.group_id)
        if action.is_access
        else None
    )
    return DescribedEvent(
        when=event.created_at, text=text, is_access=action.is_access, looker=looker
    )


# What an admin reads in the console: everyone by login handle (admins may see those).
_ADMIN_TEXT = {
    Action.ENCRYPTION_KEYS_ROTATED: "The encryption keys were rotated",
    Action.DEMO_DATA_SEEDED: "Demo data was created",
    Action.ACCOUNT_CREATED: "{actor} created an account",
    Action.LOGIN_SUCCEEDED: "{actor} signed in",
    Action.LOGIN_FAILED: "A sign-in failed{for_subject}",
    Action.LOGIN_THROTTLED: "Sign-in was paused after too many failures{for_subject}",
    Action.LOGGED_OUT: "{actor} signed out",
    Action.QUICK_EXIT: "{actor} used Leave quickly",
    Action.PASSWORD_CHANGED: "{actor} changed their password",
    Action.PASSWORD_RESET: "{actor} reset their password",
    Action.EMAIL_VERIFIED: "{actor} confirmed a recovery email",
    Action.CONTACT_DETAILS_CHANGED: "{actor} changed their contact details",
    Action.TWO_FACTOR_ENABLED: "{actor} set up two-factor authentication",
    Action.TWO_FACTOR_DISABLED: "{actor} turned two-factor authentication off",
    Action.TWO_FACTOR_FAILED: "A wrong two-factor code was entered{for_subject}",
    Action.BACKUP_CODE_USED: "{actor} used a backup code",
    Action.SESSION_REVOKED: "{actor} signed sessions out",
    Action.DATA_EXPORTED: "{actor} exported their data",
    Action.ACCOUNT_DELETED: "Account {subject_id} was deleted",
    Action.RATE_LIMIT_HIT: "A rate limit was hit",
    Action.ADMIN_APPOINTED: "{actor} made {subject} an admin",
    Action.ADMIN_REMOVED: "{actor} removed {subject} as an admin",
    Action.ACCOUNT_CHANGED_BY_ADMIN: "{actor} changed the account of {subject}",
    Action.GROUP_CREATED: "{actor} created group {group}",
    Action.GROUP_EDITED: "{actor} edited group {group}",
    Action.FACILITATOR_APPOINTED: "{actor} appointed {subject} facilitator of {group}",
    Action.FACILITATOR_REMOVED: "{actor} removed {subject} as facilitator of {group}",
    Action.MEMBERSHIP_CREATED: "{subject} was given a place in {group}",
    Action.MEMBERSHIP_CHANGED: "{actor} changed a membership of {group}",
    Action.PSEUDONYM_CHANGED: "{actor} changed their pseudonym in {group}",
    Action.AGREEMENT_PUBLISHED: "{actor} published a new agreement for {group}",
    Action.AGREEMENT_SIGNED: "{actor} signed the agreement of {group}",
    Action.MEMBER_LEFT: "{actor} left {group}",
    Action.MEMBERSHIP_IDENTITY_VIEWED: "{actor} looked up the account behind a membership of {group}",
    Action.APPLICATION_SUBMITTED: "{actor} sent application {target} to {group}",
    Action.APPLICATION_ANSWERS_VIEWED: "{actor} opened the intake answers of application {target} in {group}",
    Action.APPLICATION_DECIDED: "{actor} decided application {target} in {group}",
    Action.APPLICATION_INFO_REQUESTED: "{actor} asked the applicant of application {target} in {group} for more",
    Action.APPLICATION_INFO_PROVIDED: "{actor} answered on application {target} in {group}",
    Action.APPLICATION_WITHDRAWN: "{actor} withdrew application {target} in {group}",
    Action.APPLICATION_STARTED: "{actor} started an application to {group}",
    Action.REVIEWER_NOTE_ADDED: "{actor} added a note to application {target} in {group}",
    Action.QUESTIONNAIRE_PUBLISHED: "{actor_or_system} published questions for {group}",
    Action.APPLICATIONS_PURGED: "Expired applications were purged",
    Action.MEETING_SCHEDULED: "{actor} scheduled a meeting of {group}",
    Action.MEETING_OPENED: "{actor} opened a meeting of {group}",
    Action.MEETING_CLOSED: "{actor_or_system} closed a meeting of {group}",
    Action.MESSAGES_PURGED: "Expired messages were deleted",
    Action.E2EE_MEETINGS_CHANGED: "{actor} changed end-to-end encryption of the meetings of {group}",
    Action.E2EE_DEVICE_REGISTERED: "{actor} registered an end-to-end encryption key for a browser, for the meetings of {group}",
    Action.E2EE_REPORT_UNVERIFIED: "{actor} sent a report in {group} that did not match the message",
    Action.E2EE_DEVICE_RETIRED: "{actor} replaced the end-to-end encryption key of a browser, for the meetings of {group}",
    Action.E2EE_MEETING_FIXED: "A meeting of {group} took the group's end-to-end encryption setting as its room opened",
    Action.BOARD_THREAD_STARTED: "{actor} started a thread on the board of {group}",
    Action.BOARD_POST_DELETED: "{actor} deleted their post on the board of {group}",
    Action.BOARD_THREAD_CHANGED: "{actor} pinned, locked or closed a thread of {group}",
    Action.BOARD_POSTS_PURGED: "Expired board posts were deleted",
    Action.REPORT_FILED: "{actor} reported a message in {group}",
    Action.MODERATION_ACTION_TAKEN: "{actor} took a moderation step about {subject} in {group}",
    Action.CONTACT_DETAILS_REVEALED: "{actor} revealed the emergency contact details of {subject} in {group}",
    Action.REPORT_RESOLVED: "{actor} resolved a report in {group}",
    Action.SAFETY_FLAG_RAISED: "{actor} raised a safety concern in {group}",
    Action.SAFETY_FLAG_HANDLED: "{actor} handled a safety concern in {group}",
    Action.ANNOUNCEMENT_PINNED: "{actor} pinned an announcement in {group}",
    Action.MODERATION_LAPSED: "A mute or suspension of {subject} in {group} ended",
    Action.CONSENT_REQUESTED: "{actor} asked {subject} for consent to share information ({group})",
    Action.CONSENT_APPROVED: "{actor} agreed to share information ({group})",
    Action.CONSENT_DECLINED: "{actor} declined to share information ({group})",
    Action.CONSENT_WITHDRAWN: "{actor} withdrew consent to share information ({group})",
    Action.DISCLOSURE_PACKAGE_PRODUCED: "{actor} produced a disclosure package about {subject} with their consent ({group})",
    Action.LEGAL_DISCLOSURE_MADE: "{actor} made a disclosure required by law about {subject_or_restricted}",
    Action.DISCLOSURE_MEMBER_NOTIFIED: "{subject} was told about a disclosure",
    Action.AUDIT_LOG_VIEWED: "{actor} viewed the audit log",
    Action.AUDIT_LOG_EXPORTED: "{actor} exported the audit log",
    Action.AUDIT_LOG_PRUNED: "Audit events before the retention limit were pruned",
    Action.AUDIT_CHAIN_BROKEN: "The audit chain failed verification",
    Action.INCIDENT_OPENED: "{actor} opened security incident {target}",
    Action.INCIDENT_SESSIONS_ENDED: "{actor} signed accounts out for incident {target}",
    Action.INCIDENT_CREDENTIALS_RENEWAL_REQUIRED: (
        "{actor} required a new password and two-factor set-up for incident {target}"
    ),
    Action.CREDENTIALS_RENEWAL_REQUIRED: (
        "{actor} required {subject} to choose a new password and set up two-factor again"
    ),
    Action.INCIDENT_MEETINGS_HELD: "{actor} put the meetings of {group} on hold",
    Action.INCIDENT_MEETINGS_HOLD_LIFTED: "{actor} lifted the hold on the meetings of {group}",
    Action.INCIDENT_KEY_ROTATION_STARTED: "{actor} started re-encrypting with the first key",
    Action.INCIDENT_MEMBERS_NOTIFIED: "{actor} sent security notices for incident {target}",
    Action.SECURITY_NOTICE_SENT: "{subject} was sent a security notice",
    Action.SECURITY_NOTICE_EMAILED: "{subject}'s security notice was handed to the mail server",
    Action.SECURITY_NOTICE_READ: "{actor} read a security notice",
    Action.INCIDENT_REPORT_EXPORTED: "{actor} exported the report of incident {target}",
    Action.INCIDENT_REGULATOR_NOTIFIED: (
        "{actor} recorded that the regulator was told of incident {target}"
    ),
    Action.INCIDENT_CLOSED: "{actor} closed security incident {target}",
}


def describe_for_admin(event: Event, *, handles: dict[int, str], groups: dict[int, str]) -> str:
    def person(user_id):  # noqa: ANN001, ANN202
        if user_id is None:
            return "someone"
        return handles.get(user_id, f"deleted account {user_id}")

    template = _ADMIN_TEXT.get(event.action_enum, event.action_enum.label)
    return template.format(
        actor=person(event.actor_id),
        actor_or_system=person(event.actor_id) if event.actor_id else "The system",
        subject=person(event.subject_id),
        subject_id=event.subject_id,
        subject_or_restricted=person(event.subject_id)
        if event.subject_id
        else "a member (telling them is restricted; see the access review)",
        for_subject=f" for {person(event.subject_id)}" if event.subject_id else " (unknown handle)",
        group=groups.get(event.group_id, f"group {event.group_id}") if event.group_id else "",
        target=event.target_id or "",
    )
