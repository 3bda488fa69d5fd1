"""What a member reads about their own data, from every app."""

from accounts.models import User
from accounts.selectors import events_about_user
from audit.describe import DescribedEvent, describe_for_subject, distinct_looks, runs_of_the_same
from groups.models import Group


def who_has_seen_my_data(user: User, *, limit: int = 200) -> dict[str, list[DescribedEvent]]:
    """The person's own events in plain language, looks at their data first.

    The events name groups the person applied to or belongs to: fine to show them."""
    events = list(events_about_user(user)[:limit])
    names = dict(
        Group.objects.filter(pk__in={e.group_id for e in events if e.group_id}).values_list(
            "pk", "name"
        )
    )
    described = [describe_for_subject(event, viewer=user, group_names=names) for event in events]
    return {
        # A facilitator's reloads while reviewing are one look, not one per page load.
        "access": runs_of_the_same(distinct_looks([d for d in described if d.is_access])),
        "account_activity": runs_of_the_same([d for d in described if not d.is_access]),
    }
