"""The admin audit console. Admins only (and, by the 2FA middleware, verified ones);
anyone else signed in gets a 404, an anonymous visitor the sign-in page. Every look at
the log is itself recorded."""

from urllib.parse import urlencode

from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render

from accounts.models import User
from audit import selectors, services
from audit.describe import describe_for_admin
from audit.events import Action
from audit.export import csv_lines, jsonl_lines
from audit.selectors import EventFilters
from audit.services import request_ip
from console import selectors as console_selectors
from console.forms import EventFilterForm, PersonForm
from groups.models import Group
from moderation.models import ContactReveal
from supportgroups.decorators import admin_required


def described(events) -> list[tuple]:  # noqa: ANN001
    """Events with their plain-language line; names loaded in two queries per page."""
    user_ids = {e.actor_id for e in events} | {e.subject_id for e in events}
    handles = dict(User.objects.filter(pk__in=user_ids - {None}).values_list("pk", "username"))
    group_ids = {e.group_id for e in events if e.group_id}
    groups = dict(Group.objects.filter(pk__in=group_ids).values_list("pk", "name"))
    return [(e, describe_for_admin(e, handles=handles, groups=groups)) for e in events]


@admin_required
def events(request: HttpRequest) -> HttpResponse:
    form = EventFilterForm(request.GET or None)
    filters = form.filters() if form.is_valid() else EventFilters()
    if form.is_bound and not form.is_valid():
        page, next_before = [], None
    else:
        before = request.GET.get("before")
        page, next_before = selectors.events_page(
            selectors.events_filtered(filters),
            before_seq=int(before) if before and before.isdigit() else None,
        )
    services.audit_log_viewed(actor=request.user, filters=filters.used(), ip=request_ip(request))
    query = {k: v for k, v in request.GET.items() if k != "before" and v}
    return render(
        request,
        "audit/events.html",
        {
            "form": form,
            "rows": described(page),
            "next_url": f"?{urlencode({**query, 'before': next_before})}" if next_before else None,
            "export_query": urlencode(query),
            "checkpoint": selectors.latest_checkpoint(),
        },
    )


@admin_required
def export(request: HttpRequest) -> HttpResponse:
    form = EventFilterForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        return render(request, "audit/events.html", {"form": form, "rows": []}, status=400)
    filters = form.filters() if form.is_bound else EventFilters()
    fmt = request.GET.get("format", "jsonl")
    if fmt not in ("jsonl", "csv"):
        raise Http404
    # The log as it stands now: the export event recorded below (and anything written
    # while the file streams) is not part of it, so the recorded count is the file's.
    queryset = selectors.events_filtered(filters).filter(seq__lte=selectors.last_seq())
    services.audit_log_exported(
        actor=request.user,
        filters=filters.used(),
        rows=queryset.count(),
        fmt=fmt,
        ip=request_ip(request),
    )
    lines = jsonl_lines(queryset) if fmt == "jsonl" else csv_lines(queryset)
    response = StreamingHttpResponse(
        lines, content_type="application/jsonl" if fmt == "jsonl" else "text/csv"
    )
    response["Content-Disposition"] = f'attachment; filename="audit-log.{fmt}"'
    return response


@admin_required
def person(request: HttpRequest) -> HttpResponse:
    form = PersonForm(request.GET or None)
    rows, user = [], None
    if form.is_valid():
        user = form.cleaned_data["handle"]
        rows = described(
            list(
                selectors.events_filtered(EventFilters(involving_id=user.pk)).order_by("-seq")[:500]
            )
        )
    services.audit_log_viewed(
        actor=request.user,
        filters=["person"] if user else [],
        ip=request_ip(request),
        page="person",
    )
    return render(request, "audit/person.html", {"form": form, "person": user, "rows": rows})


@admin_required
def group_access(request: HttpRequest, group_id: int) -> HttpResponse:
    group = Group.objects.filter(pk=group_id).first()
    if group is None:
        raise Http404
    events = list(
        selectors.events_filtered(
            EventFilters(group_id=group.pk, actions=tuple(int(a) for a in Action.access_actions()))
        ).order_by("-seq")[:500]
    )
    services.audit_log_viewed(
        actor=request.user,
        filters=["group", "sensitive_access"],
        ip=request_ip(request),
        page="group_access",
    )
    # Named by login handle, like the rows above: a pseudonym beside a handle would tell an
    # admin who is behind it without the audited identity look-up (groups.admin).
    reveals = ContactReveal.objects.filter(group=group).select_related(
        "actor__user", "membership__user"
    )[:200]
    return render(
        request,
        "audit/group_access.html",
        {"group": group, "rows": described(events), "reveals": reveals},
    )


@admin_required
def signals(request: HttpRequest) -> HttpResponse:
    data = console_selectors.security_signals()
    handles = dict(
        User.objects.filter(
            pk__in=[uid for uid, _ in data.failed_by_account + data.throttled_accounts]
        ).values_list("pk", "username")
    )
    services.audit_log_viewed(
        actor=request.user, filters=[], ip=request_ip(request), page="signals"
    )
    return render(
        request,
        "audit/signals.html",
        {
            "signals": data,
            "failed_by_ip": [(selectors.ip_for_index(i) or "?", n) for i, n in data.failed_by_ip],
            "limited_by_ip": [
                (selectors.ip_for_index(i) or "?", n) for i, n in data.rate_limits_by_ip
            ],
            "failed_by_account": [
                (handles.get(uid, f"account {uid}"), n) for uid, n in data.failed_by_account
            ],
            "throttled_accounts": [
                (handles.get(uid, f"account {uid}"), n) for uid, n in data.throttled_accounts
            ],
            "throttled_by_ip": [
                (selectors.ip_for_index(i) or "?", n) for i, n in data.throttled_by_ip
            ],
            "two_factor_disabled": described(data.two_factor_disabled),
            "appointments": described(data.appointments),
            "reveals": described(data.reveals),
            "checkpoint": selectors.latest_checkpoint(),
        },
    )
