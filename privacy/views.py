"""The privacy centre's pages about a member's own data, under /account/."""

import json

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from accounts.reauth import reauthentication_required
from privacy import selectors, services
from privacy.forms import DeleteAccountForm


@login_required
def activity(request: HttpRequest) -> HttpResponse:
    return render(request, "privacy/activity.html", selectors.who_has_seen_my_data(request.user))


@login_required
@reauthentication_required()
@require_http_methods(["GET", "POST"])
def export(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return render(request, "privacy/export.html")
    data = services.account_export(user=request.user, request=request)
    response = HttpResponse(
        json.dumps(data, indent=2, ensure_ascii=False), content_type="application/json"
    )
    response["Content-Disposition"] = 'attachment; filename="my-data.json"'
    return response


@login_required
@reauthentication_required()
@require_http_methods(["GET", "POST"])
def delete_account(request: HttpRequest) -> HttpResponse:
    form = DeleteAccountForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        services.account_delete(user=request.user, request=request)
        return render(request, "privacy/deleted.html")
    return render(request, "privacy/delete.html", {"form": form})
