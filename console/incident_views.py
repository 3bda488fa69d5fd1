"""Breach response at /audit/incidents/: admins (2FA) only, like the rest of the console.

Each step is a page that says what it will do, with counts, and a form to confirm it;
the step itself is a service (console.services). The member's side (the notice on every
page, marked read) is at the end."""

from __future__ import annotations

from dataclasses import dataclass

from django import forms as django_forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from accounts.selectors import user_by_handle
from audit import selectors as audit_selectors
from audit import services as audit_services
from audit.events import Action
from audit.models import Event
from audit.services import request_ip
from console import notices, selectors, services
from console.forms import ConfirmForm, IncidentForm, RegulatorForm, SignOutForm
from console.models import Incident, KeyRotation, SecurityNotice
from console.services import IncidentError
from console.views import described
from supportgroups.decorators import admin_required

# --- the list and opening an incident --------------------------------------------------------


@admin_required
def incident_list(request: HttpRequest) -> HttpResponse:
    incidents = list(selectors.incidents_list())
    return render(
        request,
        "console/incidents.html",
        {
            "incidents": [(i, selectors.incident_deadline(i)) for i in incidents],
        },
    )


def _prefill(request: HttpRequest) -> dict:
    """ "Open an incident" from a security signal: what the signal says, as a start."""
    signal = request.GET.get("signal", "")
    now = timezone.now()
    initial = {"detected_at": now.replace(second=0, microsecond=0)}
    handle = request.GET.get("account", "").strip()
    address = request.GET.get("address", "").strip()
    user = user_by_handle(handle) if handle else None
    if signal in ("failed_sign_ins", "throttled") and user is not None:
        action = Action.LOGIN_FAILED if signal == "failed_sign_ins" else Action.LOGIN_THROTTLED
        count = selectors.recent_events_about(user, action, now=now)
        what = (
            "failed sign-ins" if signal == "failed_sign_ins" else "sign-ins refused by throttling"
        )
        # The handle goes in the affected accounts only, a link that goes with the
        # account if it is deleted; the incident's words (kept for the regulator's
        # report) name no account, so they never outlive it.
        initial.update(
            title=f"Many {what} against one account",
            description=(
                f"The security signals showed {count} {what} against the affected account "
                f"in the 24 hours before {now:%Y-%m-%d %H:%M} UTC. "
                "Someone may be trying to take the account over."
            ),
            accounts=user.username,
        )
    elif signal in ("failed_sign_ins_address", "rate_limits_address") and address:
        what = "failed sign-ins" if signal == "failed_sign_ins_address" else "rate limits hit"
        # The address itself stays only in the signals' audit rows, which go with the audit
        # log's retention (audit_log_prune); the incident's words are kept for the
        # regulator's report, so they only say that it was one address.
        initial.update(
            title=f"Many {what} from one address",
            description=(
                f"The security signals showed many {what} from one address in the 24 hours "
                f"before {now:%Y-%m-%d %H:%M} UTC (the signals page shows which, for as "
                "long as the audit log keeps those rows)."
            ),
        )
    return initial


@admin_required
def incident_open(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = IncidentForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                incident = services.incident_open(
                    actor=request.user,
                    title=data["title"],
                    description=data["description"],
                    detected_at=data["detected_at"],
                    users=data["accounts"],
                    groups=list(data["groups"]),
                    ip=request_ip(request),
                )
            except IncidentError as error:
                form.add_error(error.field, error.message)
            else:
                messages.success(request, "The incident is open. Take its steps below.")
                return redirect("audit:incident", incident_id=incident.pk)
    else:
        form = IncidentForm(initial=_prefill(request))
    return render(request, "console/incident_open.html", {"form": form})


def _word(value: object) -> str:
    return (
        {True: "yes", False: "no"}.get(value, str(value)) if isinstance(value, bool) else str(value)
    )


def _timeline(events: list[Event]) -> list[tuple[Event, str]]:
    """Each step in words, with the counts it recorded ("people: 3, sessions: 5")."""
    rows = []
    for event, text in described(events):
        details = ", ".join(
            f"{key.replace('_', ' ')}: {_word(value)}" for key, value in sorted(event.extra.items())
        )
        rows.append((event, f"{text} ({details})" if details else text))
    return rows


# --- the incident page ----------------------------------------------------------------------


@admin_required
def incident_detail(request: HttpRequest, incident_id: int) -> HttpResponse:
    incident = selectors.incident_or_404(incident_id)
    timeline = selectors.incident_timeline(incident)
    audit_services.audit_log_viewed(
        actor=request.user, filters=["incident"], ip=request_ip(request), page="incident"
    )
    return render(
        request,
        "console/incident.html",
        {
            "incident": incident,
            "deadline": selectors.incident_deadline(incident),
            "accounts": incident.affected_users.order_by("username"),
            "groups": incident.affected_groups.order_by("name"),
            "holds": incident.meeting_holds.filter(lifted_at__isnull=True).count(),
            "rotation": incident.rotations.first(),
            "counts": selectors.incident_counts(incident),
            "timeline": _timeline(timeline),
            "staff": selectors.incident_staff(incident, actor=request.user),
        },
    )


# --- the steps --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    title: str
    button: str
    done: str  # the message after it was done, with {n}


def _step_page(
    request: HttpRequest,
    incident: Incident,
    *,
    step: Step,
    form: django_forms.Form,
    context: dict,
    status: int = 200,
) -> HttpResponse:
    return render(
        request,
        "console/incident_step.html",
        {"incident": incident, "step": step, "form": form, **context},
        status=status,
    )


def _run_step(request, incident, *, step, form_class, context, do):  # noqa: ANN001, ANN202
    """GET: the confirmation page. POST: the step, or the page again with what is wrong."""
    if incident.closed_at is not None:
        messages.error(request, "This incident is closed.")
        return redirect("audit:incident", incident_id=incident.pk)
    form = form_class(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        if form.is_valid():
            try:
                result = do(form.cleaned_data)
            except IncidentError as error:
                form.add_error(error.field, error.message)
            else:
                messages.success(request, step.done.format(n=result))
                return redirect("audit:incident", incident_id=incident.pk)
        return _step_page(request, incident, step=step, form=form, context=context, status=400)
    return _step_page(request, incident, step=step, form=form, context=context)


@admin_required
def incident_sign_out(request: HttpRequest, incident_id: int) -> HttpResponse:
    incident = selectors.incident_or_404(incident_id)
    accounts = list(incident.affected_users.order_by("username"))

    def do(data):  # noqa: ANN001, ANN202
        ended = services.incident_sign_out(
            actor=request.user,
            incident=incident,
            everyone=data["scope"] == "everyone",
            ip=request_ip(request),
            keep_session_key=request.session.session_key or "",
        )
        return f"{ended['people']} people ({ended['sessions']} sessions)"

    return _run_step(
        request,
        incident,
        step=Step(
            title="Sign out everywhere",
            button="Sign them out now",
            done="Signed out: {n}. Their open pages and meeting rooms closed.",
        ),
        form_class=SignOutForm,
        context={
            "explain": [
                "Every session of the chosen people ends on every device, and their open "
                "pages and meeting rooms close at once. They can sign in again straight away "
                "(require a new password too, if their password may be known).",
                f"The affected accounts: {', '.join(u.username for u in accounts) or 'none'}.",
                "“Everyone” signs out every person on the site except this session of yours.",
            ]
        },
        do=do,
    )


@admin_required
def incident_renew_credentials(request: HttpRequest, incident_id: int) -> HttpResponse:
    incident = selectors.incident_or_404(incident_id)
    staff = selectors.incident_staff(incident, actor=request.user)
    return _run_step(
        request,
        incident,
        step=Step(
            title="Require a new password and two-factor set-up",
            button="Require it now",
            done="{n} accounts must choose a new password and set up two-factor again.",
        ),
        form_class=ConfirmForm,
        context={
            "explain": [
                "The affected admins and facilitators are signed out everywhere now. At their "
                "next sign-in (with their current password and code, which shows it is still "
                "them) they must choose a new password and then set up their authenticator "
                "app again, with new backup codes. Until both are done they reach nothing "
                "else, and no meeting room.",
                "If their password and authenticator may both be in someone else's hands, "
                "also make the account inactive in the Django admin until you have spoken "
                "to them.",
                "Applies to: "
                + (", ".join(u.username for u in staff) or "nobody (no affected staff)")
                + ".",
            ]
        },
        do=lambda data: services.incident_require_credential_renewal(
            actor=request.user, incident=incident, ip=request_ip(request)
        ),
    )


@admin_required
def incident_hold_meetings(request: HttpRequest, incident_id: int) -> HttpResponse:
    incident = selectors.incident_or_404(incident_id)
    groups = list(incident.affected_groups.order_by("name"))
    return _run_step(
        request,
        incident,
        step=Step(
            title="Put meetings on hold",
            button="Put them on hold now",
            done="The meetings of {n} groups are on hold.",
        ),
        form_class=ConfirmForm,
        context={
            "explain": [
                "Open meeting rooms of the affected groups close now, and none of their "
                "meetings opens until you lift the hold here. Members in a room, and anyone "
                "who tries to enter, read: “This group's meetings are paused for now while "
                "we check something. Nothing you need to do: we will let you know when they "
                "start again.”",
                f"Groups: {', '.join(g.name for g in groups) or 'none'}.",
            ]
        },
        do=lambda data: services.incident_hold_meetings(
            actor=request.user, incident=incident, ip=request_ip(request)
        ),
    )


@admin_required
def incident_lift_hold(request: HttpRequest, incident_id: int) -> HttpResponse:
    incident = selectors.incident_or_404(incident_id)
    return _run_step(
        request,
        incident,
        step=Step(
            title="Lift the hold on meetings",
            button="Lift the hold now",
            done="{n} holds lifted: the rooms open again at their times.",
        ),
        form_class=ConfirmForm,
        context={
            "explain": [
                "The affected groups' meetings open again at their times (a group another "
                "open incident also holds stays on hold)."
            ]
        },
        do=lambda data: services.incident_lift_hold(
            actor=request.user, incident=incident, ip=request_ip(request)
        ),
    )


@admin_required
def incident_notify(request: HttpRequest, incident_id: int) -> HttpResponse:
    incident = selectors.incident_or_404(incident_id)
    steps = notices.steps_taken(incident)

    def do(data):  # noqa: ANN001, ANN202
        sent = services.incident_notify(
            actor=request.user, incident=incident, ip=request_ip(request)
        )
        # Emailed after commit: the incident's counts say how many the mail server took.
        return f"{sent['people']} people ({sent['emails_queued']} with a confirmed email)"

    return _run_step(
        request,
        incident,
        step=Step(
            title="Tell the people affected", button="Send the notice now", done="Told: {n}."
        ),
        form_class=ConfirmForm,
        context={
            "explain": [
                f"{len(selectors.incident_members(incident))} people: the affected accounts, "
                "the members of the affected groups and of the groups an affected account "
                "facilitates. Each sees the notice on every page until "
                "they mark it read, and gets it by email if they confirmed a recovery email. "
                "Anyone already told about this incident is not told again.",
                "The notice never names a group. This is what it says:",
            ],
            "preview": notices.notice_text(incident=incident, steps=steps),
        },
        do=do,
    )


@admin_required
def incident_regulator(request: HttpRequest, incident_id: int) -> HttpResponse:
    incident = selectors.incident_or_404(incident_id)
    return _run_step(
        request,
        incident,
        step=Step(
            title="Record that the regulator was told",
            button="Record it",
            done="Recorded.",
        ),
        form_class=RegulatorForm,
        context={
            "explain": [
                "When you have notified the supervisory authority, record when, and their "
                "reference. The 72-hour deadline then shows as met or missed."
            ]
        },
        do=lambda data: services.incident_regulator_notified(
            actor=request.user,
            incident=incident,
            notified_at=data["notified_at"],
            reference=data["reference"],
            ip=request_ip(request),
        ),
    )


@admin_required
def incident_close(request: HttpRequest, incident_id: int) -> HttpResponse:
    incident = selectors.incident_or_404(incident_id)
    return _run_step(
        request,
        incident,
        step=Step(title="Close the incident", button="Close it", done="The incident is closed."),
        form_class=ConfirmForm,
        context={"explain": ["No more steps can be taken on a closed incident; it stays listed."]},
        do=lambda data: services.incident_close(
            actor=request.user, incident=incident, ip=request_ip(request)
        ),
    )


# --- the key rotation ---------------------------------------------------------------------------


def _rotation_state(rotation: KeyRotation | None) -> dict:
    if rotation is None:
        return {"started": False}
    return {
        "started": True,
        "done": rotation.finished_at is not None,
        "seen": rotation.rows_seen,
        "total": max(rotation.total_rows, rotation.rows_seen),
        "changed": rotation.rows_changed,
    }


@admin_required
def incident_rotate_keys(request: HttpRequest, incident_id: int) -> HttpResponse:
    """GET: the rotation's page (its progress, or the form to start it). POST: start it
    (confirmed); the page then runs it batch by batch (incident_rotate_keys_step)."""
    incident = selectors.incident_or_404(incident_id)
    form = ConfirmForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                services.incident_key_rotation_start(
                    actor=request.user, incident=incident, ip=request_ip(request)
                )
            except IncidentError as error:
                form.add_error(error.field, error.message)
            else:
                return redirect("audit:incident_rotate_keys", incident_id=incident.pk)
        status = 400
    rotation = incident.rotations.first()
    return render(
        request,
        "console/incident_rotation.html",
        {
            "incident": incident,
            "form": form,
            "rotation": rotation,
            "state": _rotation_state(rotation),
            "keys": len(settings.FIELD_ENCRYPTION_KEYS),
        },
        status=status,
    )


@admin_required
@require_POST
def incident_rotate_keys_step(request: HttpRequest, incident_id: int) -> HttpResponse:
    """One batch. The page's script asks for JSON and calls again until done; without
    JavaScript, the button does one batch and comes back to the page."""
    incident = selectors.incident_or_404(incident_id)
    rotation = incident.rotations.filter(finished_at__isnull=True).first()
    if rotation is not None:
        rotation = services.incident_key_rotation_step(actor=request.user, rotation=rotation)
    else:
        rotation = incident.rotations.first()
    if "application/json" in request.headers.get("Accept", ""):
        return JsonResponse(_rotation_state(rotation))
    return redirect("audit:incident_rotate_keys", incident_id=incident.pk)


# --- the report for the regulator ----------------------------------------------------------------


@admin_required
def incident_report(request: HttpRequest, incident_id: int) -> HttpResponse:
    """A plain-text report: what happened, when, counts of people and records affected
    and every step with its time. No message text and no contact data."""
    incident = selectors.incident_or_404(incident_id)
    services.incident_report_exported(actor=request.user, incident=incident, ip=request_ip(request))
    timeline = selectors.incident_timeline(incident)
    body = render_to_string(
        "console/incident_report.txt",
        {
            "incident": incident,
            "deadline": selectors.incident_deadline(incident),
            "counts": selectors.incident_counts(incident),
            "timeline": _timeline(timeline),
            "now": timezone.now(),
            "checkpoint": audit_selectors.latest_checkpoint(),
        },
        # The request brings the context processors: the report opens with SITE_NAME.
        request=request,
    )
    response = HttpResponse(body, content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="incident-{incident.pk}-report.txt"'
    return response


# --- the member's side: the notice -------------------------------------------------------


@login_required
@require_POST
def notice_read(request: HttpRequest, notice_id: int) -> HttpResponse:
    notice = SecurityNotice.objects.filter(pk=notice_id, user=request.user).first()
    if notice is None:
        raise Http404
    services.security_notice_read(actor=request.user, notice=notice, ip=request_ip(request))
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        back = reverse("account_home")
    return redirect(back)
