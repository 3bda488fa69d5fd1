import functools

from accounts.facts import page_fact


def application_news(request):
    """The navigation's two facts about the person: how many of their applications changed
    since they last looked (in-app news), and whether they facilitate any group.

    Asked only when a page shows them (templates call callables), with the page's other
    facts about the person in one query (accounts/facts.py); a view that already knows an
    answer passes its own value, which takes precedence over a context processor's."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "APPLICATION_NEWS": functools.cache(lambda: page_fact(request, "application_news")),
        "FACILITATES": functools.cache(lambda: page_fact(request, "facilitates_any_group")),
    }
