"""ASGI entry point: HTTP through Django, websockets through Channels (Daphne serves both)."""

import gc
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportgroups.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

# Set up Django before importing anything that touches models.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.core import checks  # noqa: E402
from django.core.exceptions import ImproperlyConfigured  # noqa: E402

from supportgroups.routing import websocket_urlpatterns  # noqa: E402

# Daphne does not run system checks; refuse to serve without the keys members rely on.
_errors = [m for m in checks.run_checks(include_deployment_checks=False) if m.is_serious()]
if _errors:
    raise ImproperlyConfigured(
        "Refusing to start: " + "; ".join(f"{m.msg} {m.hint or ''}".strip() for m in _errors)
    )

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
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
