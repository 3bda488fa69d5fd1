"""The privacy centre's pages about a member's own data, under /account/; and the pages
that share a member's information outside the app, under /disclosures/ (a facilitator's
consent requests and packages, an admin's disclosures required by law)."""

import json
import re

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from accounts.reauth import reauthentication_required
from accounts.services import login_record_failure
from audit.events import Action
from audit.services import audit_log_viewed, request_ip
from groups.models import CURRENT_STATUSES, Membership
from groups.selectors import facilitation_for_user_or_404
from privacy import selectors, services
from privacy.forms import (
    AccessReviewForm,
    ConsentAnswerForm,
    ConsentRequestForm,
    DeleteAccountForm,
    LegalDisclosureForm,
)
from privacy.models import Item
from privacy.packages import content_sha256, readable_lines
from supportgroups.decorators import admin_required

# The token a form that downloads a file sends (static/js/download-form.js): 16 random bytes.
DOWNLOAD_TOKEN = re.compile(r"[0-9a-f]{32}")


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


# --- consent requests: the member's side (the privacy centre) -------------------------------


@login_required
def consents(request: HttpRequest) -> HttpResponse:
    return render(
        request, "privacy/consents.html", {"consents": selectors.consents_for_member(request.user)}
    )


@login_required
@require_http_methods(["GET", "POST"])
def consent(request: HttpRequest, consent_id: int) -> HttpResponse:
    """The request, with exactly what would be shared; the member approves or declines."""
    found = selectors.consent_for_member_or_404(request.user, consent_id)
    form = ConsentAnswerForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            if form.cleaned_data["answer"] == "approve":
                services.consent_approve(
                    actor=request.user,
                    consent=found,
                    shown_sha256=form.cleaned_data["shown"],
                    ip=request_ip(request),
                )
                messages.success(request, "You agreed. You can withdraw your consent at any time.")
            else:
                services.consent_decline(actor=request.user, consent=found, ip=request_ip(request))
                messages.success(request, "You declined. Nothing will be shared.")
        except services.PrivacyError as error:
            form.add_error(None, error.message)
        else:
            return redirect("account_consent", consent_id=found.pk)
        found = selectors.consent_for_member_or_404(request.user, consent_id)
    preview = services.consent_preview(found)
    return render(
        request,
        "privacy/consent.html",
        {
            "consent": found,
            "preview": _readable(preview),
            "shown": content_sha256(preview),
            "form": form,
            "packages": found.packages.all(),
            "expired": found.is_expired(),
        },
    )


@login_required
@require_POST
def consent_withdraw(request: HttpRequest, consent_id: int) -> HttpResponse:
    found = selectors.consent_for_member_or_404(request.user, consent_id)
    try:
        services.consent_withdraw(actor=request.user, consent=found, ip=request_ip(request))
    except services.PrivacyError as error:
        messages.error(request, error.message)
    else:
        messages.success(
            request, "Your consent is withdrawn. Nothing more will be shared under it."
        )
    return redirect("account_consent", consent_id=found.pk)


def _readable(content: dict) -> list[tuple[str, list[str]]]:
    """The items in the order of the list, under their names, as lines for the page: every
    value the file would hold, nothing left out."""
    return [
        (Item(key).label, readable_lines(content[key])) for key in Item.values if key in content
    ]


# --- consent requests: the facilitator's side -----------------------------------------------


def _verified_facilitator_or_404(request: HttpRequest, slug: str):  # noqa: ANN202
    """A facilitator of the group whose session passed the second factor (the middleware
    sends an unverified one to set it up; this page checks again itself)."""
    facilitator = facilitation_for_user_or_404(request.user, slug)
    if not request.user.is_verified():
        raise Http404
    return facilitator


@login_required
def group_consents(request: HttpRequest, slug: str) -> HttpResponse:
    facilitator = _verified_facilitator_or_404(request, slug)
    return render(
        request,
        "privacy/group_consents.html",
        {
            "group": facilitator.group,
            "consents": selectors.consents_of_group(facilitator),
            "packages": selectors.packages_of_group(facilitator),
            "today": timezone.localdate(),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def consent_new(request: HttpRequest, slug: str, membership_id: int) -> HttpResponse:
    facilitator = _verified_facilitator_or_404(request, slug)
    membership = (
        Membership.objects.filter(
            pk=membership_id, group=facilitator.group, status__in=CURRENT_STATUSES
        )
        .exclude(pk=facilitator.pk)
        .first()
    )
    if membership is None:
        raise Http404
    form = ConsentRequestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.consent_request(
                actor=request.user,
                membership=membership,
                items=data["items"],
                recipient=data["recipient"],
                purpose=data["purpose"],
                summary=data["summary"],
                valid_until=data["valid_until"],
                ip=request_ip(request),
            )
        except services.PrivacyError as error:
            _show_error(form, error)
        else:
            messages.success(
                request,
                f"Asked. {membership.pseudonym} reads exactly what would be shared, and answers.",
            )
            return redirect("disclosures:group_consents", slug=slug)
    return render(
        request,
        "privacy/consent_new.html",
        {"group": facilitator.group, "membership": membership, "form": form},
    )


@login_required
@require_POST
def consent_package(request: HttpRequest, slug: str, consent_id: int) -> HttpResponse:
    """Make the file to hand over (only under an approved, unexpired consent)."""
    facilitator = _verified_facilitator_or_404(request, slug)
    found = selectors.consent_for_facilitator_or_404(facilitator, consent_id)
    try:
        package = services.consent_package_produce(
            actor=request.user, consent=found, ip=request_ip(request)
        )
    except services.PrivacyError as error:
        messages.error(request, error.message)
        return redirect("disclosures:group_consents", slug=slug)
    return _attachment(
        request,
        package,
        done=f"The file is made ({package.filename}): your browser downloaded it, and it "
        "is listed under Files made. Hand it over only to the person named.",
    )


# --- disclosures required by law: the admins' side -----------------------------------------


@admin_required
def legal_disclosures(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "privacy/legal_list.html",
        {"disclosures": selectors.legal_disclosures(), "today": timezone.localdate()},
    )


@admin_required
@require_http_methods(["GET", "POST"])
def legal_disclosure_new(request: HttpRequest) -> HttpResponse:
    """Record a disclosure the law requires; the answer is the package file itself."""
    form = LegalDisclosureForm(request.user, request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                package = services.legal_disclosure_make(
                    actor=request.user,
                    subject=data["handle"],
                    group=data["group"],
                    items=data["items"],
                    legal_basis=data["legal_basis"],
                    basis_other=data["basis_other"],
                    reference=data["reference"],
                    recipient=data["recipient"],
                    description=data["description"],
                    summary=data["summary"],
                    restricted_until=data["restricted_until"],
                    ip=request_ip(request),
                )
            except services.PrivacyError as error:
                _show_error(form, error)
            else:
                return _attachment(
                    request,
                    package,
                    done=f"Recorded. Your browser downloaded the file ({package.filename}); "
                    "only its fingerprint is kept here.",
                )
        elif form.password_failed:
            # A wrong password is recorded like any failed confirmation of identity.
            login_record_failure(
                handle=request.user.username, signed_in=request.user, ip=request_ip(request)
            )
    return render(request, "privacy/legal_new.html", {"form": form}, status=200)


def _show_error(form, error: services.PrivacyError) -> None:  # noqa: ANN001
    """A service's refusal on the form: at its field when the form has one."""
    form.add_error(error.field if error.field in form.fields else None, error.message)


def _attachment(request: HttpRequest, package: services.Package, *, done: str) -> HttpResponse:
    """The package file itself. ``done`` is the message the next page shows; the page that
    sent the form learns the download happened from the ``sg_download`` cookie carrying the
    token it sent (static/js/download-form.js), and moves on to that page."""
    messages.success(request, done)
    response = HttpResponse(package.data, content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{package.filename}"'
    response["X-Package-SHA256"] = package.disclosure.package_sha256
    token = request.POST.get("download_token", "")
    if DOWNLOAD_TOKEN.fullmatch(token):
        response.set_cookie(
            "sg_download",
            token,
            max_age=120,
            secure=request.is_secure(),
            httponly=False,  # read by the page that sent the form
            samesite="Strict",
        )
    return response


# --- the admins' access review of one member's disclosures ---------------------------------
# Beside the audit console (linked from its pages); here because console and privacy may
# not import each other (the layers contract), and this page reads privacy's records.

# The log's events about information leaving the app, shown beside the looks.
DISCLOSURE_ACTIONS = (
    Action.CONSENT_REQUESTED,
    Action.CONSENT_APPROVED,
    Action.CONSENT_DECLINED,
    Action.CONSENT_WITHDRAWN,
    Action.DISCLOSURE_PACKAGE_PRODUCED,
    Action.LEGAL_DISCLOSURE_MADE,
    Action.DISCLOSURE_MEMBER_NOTIFIED,
)


@admin_required
def access_review(request: HttpRequest) -> HttpResponse:
    form = AccessReviewForm(request.GET or None)
    person, review, rows = None, None, []
    if form.is_valid():
        person = form.cleaned_data["handle"]
        review = selectors.access_review(person)
        actions = (*Action.access_actions(), *DISCLOSURE_ACTIONS)
        rows = selectors.described_for_admin(
            selectors.disclosure_events_about(person, actions=actions)[:500]
        )
    audit_log_viewed(
        actor=request.user,
        filters=["person"] if person else [],
        ip=request_ip(request),
        page="access_review",
    )
    return render(
        request,
        "audit/access_review.html",
        {"form": form, "person": person, "review": review, "rows": rows},
    )
