from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from accounts.services import session_leave_quickly


# Exempt from CSRF on purpose: the only effect is signing the visitor out, and the
# control must work from any page, with or without JavaScript, in one click.
@csrf_exempt
@require_http_methods(["GET", "POST"])
def leave_quickly(request: HttpRequest) -> HttpResponse:
    session_leave_quickly(request=request)
    if request.method == "POST":
        return HttpResponse(status=204)
    return HttpResponseRedirect(settings.QUICK_EXIT_URL)
