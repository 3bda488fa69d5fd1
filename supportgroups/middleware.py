from django.conf import settings
from django.middleware import csrf
from django.utils.cache import add_never_cache_headers


class SecurityHeadersMiddleware:
    """Headers Django does not set itself (CSP comes from django-csp)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.setdefault("Permissions-Policy", settings.PERMISSIONS_POLICY)
        response.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        return response


class NoStoreMiddleware:
    """Nothing Django renders may be kept by the browser or a proxy.

    A shared or watched computer must not be able to show a page from its cache or the
    Back button after someone signs out or leaves quickly. Static files are served by
    WhiteNoise before this and stay cacheable.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        add_never_cache_headers(response)
        response["Cache-Control"] = "no-store, no-cache, must-revalidate, private, max-age=0"
        return response


class CsrfViewMiddleware(csrf.CsrfViewMiddleware):
    """Django's CSRF protection, working with ``Referrer-Policy: no-referrer``.

    Under no-referrer, browsers send ``Origin: null`` (and no Referer) with same-origin
    form posts, which Django would reject. ``Sec-Fetch-Site`` is set by the browser
    itself (scripts cannot forge it) and says whether the request came from our own
    pages; when it says so, the origin is ours. The CSRF token is still checked.
    """

    def _origin_verified(self, request):
        if (
            request.META.get("HTTP_ORIGIN") == "null"
            and request.META.get("HTTP_SEC_FETCH_SITE") == "same-origin"
        ):
            return True
        return super()._origin_verified(request)
