"""Audit actions, numbered in blocks per app so a number alone says where it came from.

Numbers are stored in the log: never renumber or reuse one; add new ones at the end of
their block.
"""

from enum import IntEnum


class Action(IntEnum):
    # 100-999: the platform itself
    ENCRYPTION_KEYS_ROTATED = 100
    DEMO_DATA_SEEDED = 101

    # 1000-1999: accounts
    ACCOUNT_CREATED = 1000
    LOGIN_SUCCEEDED = 1001
    LOGIN_FAILED = 1002
    LOGGED_OUT = 1003
    QUICK_EXIT = 1004
    PASSWORD_CHANGED = 1005
    PASSWORD_RESET = 1006
    EMAIL_VERIFIED = 1007
    CONTACT_DETAILS_CHANGED = 1008
    TWO_FACTOR_ENABLED = 1009
    TWO_FACTOR_DISABLED = 1010
    TWO_FACTOR_FAILED = 1011
    BACKUP_CODE_USED = 1012
    SESSION_REVOKED = 1013
    DATA_EXPORTED = 1014
    ACCOUNT_DELETED = 1015
    RATE_LIMIT_HIT = 1016
    ADMIN_APPOINTED = 1017
    ADMIN_REMOVED = 1018
    ACCOUNT_CHANGED_BY_ADMIN = 1019
    LOGIN_THROTTLED = 1020

    # 2000-2999: groups
    GROUP_CREATED = 2000
    GROUP_EDITED = 2001
    FACILITATOR_APPOINTED = 2002
    FACILITATOR_REMOVED = 2003
    MEMBERSHIP_CREATED = 2004
    MEMBERSHIP_CHANGED = 2005
    PSEUDONYM_CHANGED = 2006
    AGREEMENT_PUBLISHED = 2007
    AGREEMENT_SIGNED = 2008
    MEMBER_LEFT = 2009
    MEMBERSHIP_IDENTITY_VIEWED = 2010

    # 3000-3999: screening
    APPLICATION_SUBMITTED = 3000
    APPLICATION_ANSWERS_VIEWED = 3001
    APPLICATION_DECIDED = 3002
    APPLICATION_INFO_REQUESTED = 3003
    APPLICATION_INFO_PROVIDED = 3004
    APPLICATION_WITHDRAWN = 3005
    REVIEWER_NOTE_ADDED = 3006
    QUESTIONNAIRE_PUBLISHED = 3007
    APPLICATIONS_PURGED = 3008
    APPLICATION_STARTED = 3009

    # 4000-4999: meetings
    MEETING_SCHEDULED = 4000
    MEETING_OPENED = 4001
    MEETING_CLOSED = 4002
    MESSAGES_PURGED = 4003
    # 4100-4199: end-to-end encrypted meetings
    E2EE_MEETINGS_CHANGED = 4100
    E2EE_DEVICE_REGISTERED = 4101
    E2EE_REPORT_UNVERIFIED = 4102
    E2EE_DEVICE_RETIRED = 4103
    E2EE_MEETING_FIXED = 4104
    # 4500-4599: the group board (beside meetings)
    BOARD_THREAD_STARTED = 4500
    BOARD_POST_DELETED = 4501
    BOARD_THREAD_CHANGED = 4502
    BOARD_POSTS_PURGED = 4503

    # 5000-5999: moderation
    REPORT_FILED = 5000
    MODERATION_ACTION_TAKEN = 5001
    CONTACT_DETAILS_REVEALED = 5002
    REPORT_RESOLVED = 5003
    SAFETY_FLAG_RAISED = 5004
    SAFETY_FLAG_HANDLED = 5005
    ANNOUNCEMENT_PINNED = 5006
    MODERATION_LAPSED = 5007

    # 6000-6099: privacy (consent requests and disclosures outside the app)
    CONSENT_REQUESTED = 6000
    CONSENT_APPROVED = 6001
    CONSENT_DECLINED = 6002
    CONSENT_WITHDRAWN = 6003
    DISCLOSURE_PACKAGE_PRODUCED = 6004
    LEGAL_DISCLOSURE_MADE = 6005
    DISCLOSURE_MEMBER_NOTIFIED = 6006

    # 9000-9999: the audit log itself
    AUDIT_LOG_VIEWED = 9000
    AUDIT_LOG_EXPORTED = 9001
    AUDIT_LOG_PRUNED = 9002
    AUDIT_CHAIN_BROKEN = 9003
    # 9100-9199: breach response (console: incidents)
    INCIDENT_OPENED = 9100
    INCIDENT_SESSIONS_ENDED = 9101
    INCIDENT_CREDENTIALS_RENEWAL_REQUIRED = 9102
    CREDENTIALS_RENEWAL_REQUIRED = 9103
    INCIDENT_MEETINGS_HELD = 9104
    INCIDENT_MEETINGS_HOLD_LIFTED = 9105
    INCIDENT_KEY_ROTATION_STARTED = 9106
    INCIDENT_MEMBERS_NOTIFIED = 9107
    SECURITY_NOTICE_SENT = 9108
    SECURITY_NOTICE_READ = 9109
    INCIDENT_REPORT_EXPORTED = 9110
    INCIDENT_REGULATOR_NOTIFIED = 9111
    INCIDENT_CLOSED = 9112
    SECURITY_NOTICE_EMAILED = 9113

    @classmethod
    def access_actions(cls) -> frozenset["Action"]:
        """Looks at a person's data: what a group's access review lists, and what "Who has
        seen my data" shows first (there a member's own export is one too)."""
        return frozenset(
            {
                cls.APPLICATION_ANSWERS_VIEWED,
                cls.CONTACT_DETAILS_REVEALED,
                cls.MEMBERSHIP_IDENTITY_VIEWED,
                cls.DATA_EXPORTED,
            }
        )

    @property
    def is_access(self) -> bool:
        return self in Action.access_actions()

    @property
    def app(self) -> str:
        return {
            0: "platform",
            1: "accounts",
            2: "groups",
            3: "screening",
            4: "meetings",
            5: "moderation",
            6: "privacy",
            9: "audit",
        }[self.value // 1000]

    @property
    def label(self) -> str:
        """How the action reads in the audit console, "Who has seen my data" and the export:
        its name in words, unless the name alone would read wrongly (an acronym, a hyphen,
        a word order only a programmer would use)."""
        return _LABELS.get(self) or self.name.replace("_", " ").capitalize()


# Names that do not read as English once their underscores are spaces.
_LABELS = {
    Action.QUICK_EXIT: "Left quickly",
    Action.TWO_FACTOR_ENABLED: "Two-factor authentication turned on",
    Action.TWO_FACTOR_DISABLED: "Two-factor authentication turned off",
    Action.TWO_FACTOR_FAILED: "Two-factor code refused",
    Action.E2EE_MEETINGS_CHANGED: "End-to-end encrypted meetings turned on or off",
    Action.E2EE_DEVICE_REGISTERED: "End-to-end encryption key registered for a browser",
    Action.E2EE_REPORT_UNVERIFIED: "Report of an end-to-end encrypted message not verified",
    Action.E2EE_DEVICE_RETIRED: "End-to-end encryption key of a browser retired",
    Action.E2EE_MEETING_FIXED: "Meeting's end-to-end encryption set as it opened",
    Action.MODERATION_LAPSED: "Mute or suspension ended",
    Action.DISCLOSURE_MEMBER_NOTIFIED: "Member told of a disclosure",
    Action.INCIDENT_SESSIONS_ENDED: "Accounts signed out (incident)",
    Action.INCIDENT_CREDENTIALS_RENEWAL_REQUIRED: "New password and two-factor required (incident)",
    Action.CREDENTIALS_RENEWAL_REQUIRED: "New password and two-factor required",
    Action.INCIDENT_MEETINGS_HELD: "Meetings put on hold (incident)",
    Action.INCIDENT_MEETINGS_HOLD_LIFTED: "Hold on meetings lifted (incident)",
    Action.INCIDENT_KEY_ROTATION_STARTED: "Key rotation started (incident)",
    Action.INCIDENT_MEMBERS_NOTIFIED: "Members sent security notices (incident)",
    Action.INCIDENT_REGULATOR_NOTIFIED: "Regulator told (incident)",
}
