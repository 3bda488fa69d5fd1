"""Request hygiene before anything else reads the request (issue 18).

- ``ForwardedHeadersMiddleware``: the client address and scheme come from forwarded
  headers only when the peer is one of ``TRUSTED_PROXIES``.
- ``RejectNulMiddleware``: a NUL character anywhere a lookup could take it from is bad
  input (400), not a database error (500).
(Log lines that would name an unlisted group: ``groups.logging``.)
"""

import ipaddress
from urllib.parse import unquote

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

# Headers a proxy sets about the client. From anyone else they are the client's own words.
FORWARDED_HEADERS = (
    "HTTP_X_FORWARDED_FOR",
    "HTTP_X_FORWARDED_PROTO",
    "HTTP_X_FORWARDED_HOST",
    "HTTP_X_FORWARDED_PORT",
    "HTTP_X_REAL_IP",
    "HTTP_FORWARDED",
)


def _parse_address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # "[::1]:1234"
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # "192.0.2.1:1234"
        value = value.split(":", 1)[0]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def is_trusted_proxy(address: str | None) -> bool:
    parsed = _parse_address(address or "")
    return parsed is not None and any(parsed in net for net in settings.TRUSTED_PROXIES)


def client_address(remote_addr: str | None, forwarded_for: str | None) -> str | None:
    """The client as the nearest untrusted hop in ``X-Forwarded-For`` says, when the peer
    is a trusted proxy; else the peer itself.

    Read from the right: each trusted proxy appended the address it saw, so the first
    address (from the right) that is not one of ours is the client. Anything left of it
    was written by the client and is ignored.
    """
    if not is_trusted_proxy(remote_addr) or not forwarded_for:
        return remote_addr
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        parsed = _parse_address(hop)
        if parsed is None:
            # Garbage in the chain: the proxy is the last address we can vouch for.
            return remote_addr
        if not is_trusted_proxy(str(parsed)):
            return str(parsed)
    return str(_parse_address(hops[0])) if hops else remote_addr


class ForwardedHeadersMiddleware:
    """First in the chain: everything after it (the HTTPS redirect, rate limits, the audit
    log's address) sees the real client, or the peer when no trusted proxy vouches.

    Daphne runs without ``--proxy-headers``: it would believe any peer.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        meta = request.META
        peer = meta.get("REMOTE_ADDR")
        if is_trusted_proxy(peer):
            meta["REMOTE_ADDR"] = client_address(peer, meta.get("HTTP_X_FORWARDED_FOR"))
        else:
            for name in FORWARDED_HEADERS:
                meta.pop(name, None)
        return self.get_response(request)


def _has_nul(value: str) -> bool:
    return "\x00" in value or "\x00" in unquote(value)


class RejectNulMiddleware:
    """A NUL in the path, the query string, a form field or a cookie is refused with 400.

    PostgreSQL cannot store or compare text holding NUL, so any lookup by a slug, token,
    search term or session key that carried one failed with a 500. Forms already refuse
    NUL in their fields (Django's ProhibitNullCharactersValidator); raw reads of
    ``request.GET``/``POST`` and URL segments did not, and there are many of them.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if self._carries_nul(request):
            return render(request, "errors/400.html", status=400)
        return self.get_response(request)

    @staticmethod
    def _carries_nul(request: HttpRequest) -> bool:
        if _has_nul(request.path) or _has_nul(request.META.get("QUERY_STRING", "")):
            return True
        if any(_has_nul(k) or _has_nul(v) for k, v in request.COOKIES.items()):
            return True
        if request.method == "POST" and request.content_type in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ):
            return any(
                _has_nul(key) or any(_has_nul(v) for v in values if isinstance(v, str))
                for key, values in request.POST.lists()
            )
        return False


def client_fingerprint(address: str | None) -> str:
    """A keyed hash of the client's address (its /64 for IPv6, as allauth counts), for
    rate-limit keys: Redis then holds no address, and nobody without BLIND_INDEX_KEY can
    test a guess against it."""
    from supportgroups.crypto import blind_index

    parsed = _parse_address(address or "")
    if parsed is None:
        network = "unknown"
    elif parsed.version == 6:
        network = str(ipaddress.ip_network(f"{parsed}/64", strict=False).network_address)
    else:
        network = str(parsed)
    return "client-" + blind_index(network, purpose="rate-limit-client")[:32]
