from audit.services import rate_limit_hit_record, request_ip


class RateLimitAuditMiddleware:
    """Records every 429 (allauth's rate limits and ours) for the security signals."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code == 429:
            rate_limit_hit_record(path=request.path, ip=request_ip(request))
        return response
