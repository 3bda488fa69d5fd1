"""View decorators shared by every app's pages."""

from functools import wraps

from django.http import Http404, HttpRequest


def admin_required(view):  # noqa: ANN001, ANN201
    """Site admins whose session passed the second factor; everyone else gets the same 404
    as for a missing page (the 2FA middleware normally stops an unverified admin sooner:
    this is the page's own guard, not a second opinion)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        user = request.user
        if not (user.is_authenticated and user.is_staff and user.is_verified()):
            raise Http404
        return view(request, *args, **kwargs)

    return wrapper
