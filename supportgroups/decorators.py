"""View decorators shared by every app's pages."""

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest


def admin_required(view):  # noqa: ANN001, ANN201
    """Site admins whose session passed the second factor. Someone not signed in is sent to
    sign in, as on every private page (an admin whose session timed out must not think the
    page is gone); a signed-in non-admin gets the same 404 as for a missing page. (The 2FA
    middleware normally stops an unverified admin sooner: this is the page's own guard.)"""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        user = request.user
        if not user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not (user.is_staff and user.is_verified()):
            raise Http404
        return view(request, *args, **kwargs)

    return wrapper
