"""Audit events in plain language.

``describe_for_subject`` is what a member reads about themselves under "Who has seen my
data": it never names the person who acted (other than "you"), only their role.
"""

from dataclasses import dataclass
from datetime import datetime

from audit.events import Action
from audit.models import Event

# What the member reads; "{group}" is filled in where the event names a group.
_SUBJECT_TEXT = {
    Action.ACCOUNT_CREATED: "Your account was created.",
    Action.LOGIN_SUCCEEDED: "You signed in.",
    Action.LOGIN_FAILED: "Someone tried to sign in to your account with a wrong password.",
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
    # Looks at your data by someone else:
    Action.APPLICATION_ANSWERS_VIEWED: "A facilitator of {group} read your application answers.",
    Action.CONTACT_DETAILS_REVEALED: (
        "A facilitator of {group} opened your emergency contact details, after writing a reason."
    ),
    Action.MEMBERSHIP_IDENTITY_VIEWED: (
        "An administrator looked up which account is behind your place in {group}."
    ),
}

_ACCESS = {
    Action.APPLICATION_ANSWERS_VIEWED,
    Action.CONTACT_DETAILS_REVEALED,
    Action.MEMBERSHIP_IDENTITY_VIEWED,
    Action.DATA_EXPORTED,
}


@dataclass(frozen=True)
class DescribedEvent:
    when: datetime
    text: str
    is_access: bool


def describe_for_subject(event: Event, *, viewer, group_names: dict[int, str] | None = None):  # noqa: ANN001
    action = event.action_enum
    template = _SUBJECT_TEXT.get(action, f"{action.label}.")
    group = (group_names or {}).get(event.group_id, "a group") if event.group_id else "a group"
    text = template.format(group=group)
    if action in _ACCESS and event.actor_id == viewer.pk and action != Action.DATA_EXPORTED:
        text = "You looked at this yourself."
    return DescribedEvent(when=event.created_at, text=text, is_access=action in _ACCESS)
