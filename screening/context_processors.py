import functools

from groups.selectors import user_facilitates_any_group
from screening.selectors import applications_with_news


def application_news(request):
    """The navigation's two facts about the person: how many of their applications changed
    since they last looked (in-app news), and whether they facilitate any group.

    Each is a query, asked only when a page shows it (templates call callables) and at
    most once per page; a view that already knows an answer passes its own value, which
    takes precedence over a context processor's."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "APPLICATION_NEWS": functools.cache(lambda: applications_with_news(user)),
        "FACILITATES": functools.cache(lambda: user_facilitates_any_group(user)),
    }
