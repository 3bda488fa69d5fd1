"""Asking for the password again before sensitive actions, without keeping the request.

allauth's ``reauthentication_required`` keeps a POST that arrives too long after the last
password in the session (``account_reauthentication_state``: the request's whole META,
so the client's IP, User-Agent and Cookie header, and its POST body) to replay it after
the password. The sessions table must hold none of that. Here a POST that needs the
password is simply not done: the person confirms their password and comes back to the
page the form is on, to press the button again. Only that page's address travels, in the
query string.
"""

from functools import wraps
from urllib.parse import urlencode

from allauth.account.internal.flows.reauthentication import is_reauthentication_required
from django.contrib import messages
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse


def reauthentication_required(*, form_page: str | None = None):
    """For views of sensitive actions. ``form_page`` (a URL name) is where the button of a
    POST-only view lives; a view that shows its own form on GET needs none."""

    def decorator(view):  # noqa: ANN001, ANN202
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            if not is_reauthentication_required(request, app="allauth.account"):
                return view(request, *args, **kwargs)
            if request.method == "GET":
                come_back_to = request.get_full_path()
            else:
                come_back_to = reverse(form_page) if form_page else request.path
                messages.info(request, "Please confirm your password, then press the button again.")
            return HttpResponseRedirect(
                f"{reverse('account_reauthenticate')}?{urlencode({'next': come_back_to})}"
            )

        return wrapper

    return decorator
