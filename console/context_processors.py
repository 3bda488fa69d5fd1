import functools

from console.selectors import unread_security_notices


def security_notices(request):
    """The person's unread security notices, shown at the top of every page. Asked only
    when a page draws them (templates call callables), once per page."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"SECURITY_NOTICES": functools.cache(lambda: unread_security_notices(user))}
