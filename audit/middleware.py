from django.db import transaction

from audit.events import Action
from audit.services import record_event, request_ip


class RateLimitAuditMiddleware:
    """Records every 429 (allauth's rate limits and ours) for the security signals."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code == 429:
            with transaction.atomic():
                record_event(
                    action=Action.RATE_LIMIT_HIT,
                    ip=request_ip(request),
                    extra={"path": request.path[:100]},
                )
        return response
