import functools

from accounts.facts import page_fact
from console.selectors import unread_security_notices


def security_notices(request):
    """The person's unread security notices, shown at the top of every page. Asked only
    when a page draws them (templates call callables), once per page; whether there are
    any comes with the page's other facts about the person (accounts/facts.py), so the
    notices themselves are read only when there are some."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "SECURITY_NOTICES": functools.cache(
            lambda: (
                unread_security_notices(user)
                if page_fact(request, "unread_security_notices")
                else []
            )
        )
    }
