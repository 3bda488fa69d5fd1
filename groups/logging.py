"""Log lines never name an unlisted group, nor carry a private link's secret (issue 18)."""

import logging
import re

# "Not Found: /groups/<slug>/..." (django.request) and the access-log style lines.
_GROUP_PATH = re.compile(
    r"/(groups|screening/apply|screening/review|moderation|meetings/group)/([-a-zA-Z0-9_]+)"
)
# Addresses that carry a secret (a private link, an invitation, an email or reset link):
# never worth a log line's while.
_SECRET_PATH = re.compile(
    r"(/(?:groups/link|groups/invitation|account/email/verify|accounts/password/reset/key)/)"
    r"[^/\s?\"']+"
)


class HideUnlistedGroupsFilter(logging.Filter):
    """Replaces the slug of an unlisted group in a log line by ``<unlisted>``, and the
    secret in a private link, invitation, email or reset link by ``<secret>``.

    An unlisted group's name is known only to its members and the people given its
    link; its slug in a server log would tell an operator or a log pipeline that it
    exists and who was looking. Listed groups are public and stay readable.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken record is logged as it is
            return True
        if "/" not in message:
            return True
        redacted = _SECRET_PATH.sub(r"\1<secret>", message)
        slugs = {m.group(2) for m in _GROUP_PATH.finditer(redacted)} - {"link", "invitation"}
        hidden = _unlisted_among(slugs) if slugs else set()
        for slug in hidden:
            redacted = re.sub(rf"(?<=/){re.escape(slug)}(?=[/?\s\"']|$)", "<unlisted>", redacted)
        if redacted == message:
            return True
        record.msg, record.args = redacted, None
        # Django's request logs also carry the request (and its path) for handlers that
        # format it; leave them nothing more to say.
        if hasattr(record, "request"):
            record.request = None
        return True


def _unlisted_among(slugs: set[str]) -> set[str]:
    """Which of these slugs name unlisted groups (or, if the database cannot say, all)."""
    try:
        # Imported here: logging is configured before the apps are loaded.
        from groups.models import Group

        listed = set(
            Group.objects.filter(slug__in=slugs, listed=True).values_list("slug", flat=True)
        )
    except Exception:  # noqa: BLE001 - logging must not fail; hide rather than tell
        return slugs
    return slugs - listed
