"""ASGI entry point: HTTP through Django, websockets through Channels (Daphne serves both)."""

import gc
import os
from urllib.parse import urlsplit

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportgroups.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

# Set up Django before importing anything that touches models.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import (  # noqa: E402
    AllowedHostsOriginValidator,
    WebsocketDenier,
)
from django.conf import settings  # noqa: E402
from django.core import checks  # noqa: E402
from django.core.exceptions import ImproperlyConfigured  # noqa: E402

from supportgroups.routing import websocket_urlpatterns  # noqa: E402

# Daphne does not run system checks; refuse to serve without the keys members rely on.
_errors = [m for m in checks.run_checks(include_deployment_checks=False) if m.is_serious()]
if _errors:
    raise ImproperlyConfigured(
        "Refusing to start: " + "; ".join(f"{m.msg} {m.hint or ''}".strip() for m in _errors)
    )


def same_origin(scope) -> bool:  # noqa: ANN001
    """The socket comes from a page of this very site: its Origin names the host *and
    port* it connects to (Channels' ALLOWED_HOSTS check ignores the port, so a page on
    another port of an allowed host, another app's, was let in), or is one of
    CSRF_TRUSTED_ORIGINS (a proxy that changes the Host header)."""
    headers = dict(scope.get("headers") or [])
    try:
        origin = headers.get(b"origin", b"").decode("latin1").lower()
        host = headers.get(b"host", b"").decode("latin1").lower()
        parsed, served = urlsplit(origin), urlsplit(f"//{host}")
        default = {"http": 80, "https": 443}.get(parsed.scheme)
        same = (
            bool(parsed.hostname)
            and default is not None
            and parsed.hostname == served.hostname
            and (parsed.port or default) == (served.port or default)
        )
    except ValueError:  # a port that is not a number
        return False
    return same or origin in {o.lower() for o in settings.CSRF_TRUSTED_ORIGINS}


class SameOriginValidator:
    def __init__(self, application):  # noqa: ANN001
        self.application = application

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket" and not same_origin(scope):
            return await WebsocketDenier()(scope, receive, send)
        return await self.application(scope, receive, send)


application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": SameOriginValidator(
            AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))
        ),
    }
)

# Everything alive now (Django, every app module, the URLconf the checks above imported)
# lives as long as the process, so take it out of the garbage collector's sight: each
# full collection walked all of it, pausing a Daphne for 60-100 ms every few seconds
# under chat load, which made the slowest deliveries in make bench. Collect first, so no
# garbage from start-up is kept for good.
gc.collect()
gc.freeze()
# A full collection still walks every object made since (each socket's consumer, scope,
# session and E2EE state, the ORM's caches): 15-50 ms in make bench's chat, about twice
# a minute per Daphne with the default thresholds (a full one after every 10 collections
# of the middle generation), and among the slowest deliveries each time
# (bench/traced_asgi.py). After 100 of them instead, a full collection comes every few
# minutes; the young generations are collected as before, and cyclic garbage that
# reaches the oldest generation is freed a few minutes later.
FULL_COLLECTION_AFTER = 100
gc.set_threshold(*gc.get_threshold()[:2], FULL_COLLECTION_AFTER)
