from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from groups import selectors, services
from groups.forms import (
    AgreementForm,
    AppointFacilitatorForm,
    GroupForm,
    InvitationForm,
    NewGroupForm,
    PseudonymForm,
    ResignForm,
    TakePlaceForm,
)
from groups.models import CURRENT_STATUSES, Membership, Role, Status, Topic
from supportgroups.decorators import admin_required


def _form_errors_from(error: services.GroupError, form) -> None:  # noqa: ANN001
    form.add_error(error.field if error.field in form.fields else None, error.message)


# --- the public directory ---------------------------------------------------------------


def directory(request: HttpRequest) -> HttpResponse:
    topic = request.GET.get("topic", "")
    if topic not in Topic.values:
        topic = ""
    query = request.GET.get("q", "").strip()[:100]
    return render(
        request,
        "groups/directory.html",
        {
            "groups": selectors.listed_groups(topic=topic, query=query),
            "topics": Topic.choices,
            "topic": topic,
            "query": query,
        },
    )


def group_detail(request: HttpRequest, slug: str) -> HttpResponse:
    return _render_public_page(request, selectors.public_group_or_404(slug))


def group_by_link(request: HttpRequest, token: str) -> HttpResponse:
    return _render_public_page(request, selectors.group_by_link_or_404(token))


def _render_public_page(request: HttpRequest, group) -> HttpResponse:  # noqa: ANN001
    membership = None
    if request.user.is_authenticated:
        membership = Membership.objects.filter(
            user=request.user,
            group=group,
            status__in=[s for s in Status if s not in (Status.LEFT, Status.REMOVED)],
        ).first()
    return render(
        request,
        "groups/detail.html",
        {
            "group": group,
            "guidelines": selectors.guidelines_of(group),
            "agreement": selectors.current_agreement(group),
            "membership": membership,
            # Counted as in the directory: everyone who holds a place.
            "member_count": (
                group.memberships.filter(status__in=CURRENT_STATUSES).count()
                if group.show_member_count
                else None
            ),
        },
    )


# --- a member's own groups --------------------------------------------------------------


@login_required
def my_groups(request: HttpRequest) -> HttpResponse:
    # What each row shows, read once here: the template then looks up one name per value
    # instead of a path through the membership and its group (a row of a person in 100
    # groups cost more to draw than to load).
    root = reverse("groups:directory")
    memberships = selectors.memberships_of_user_list(request.user)
    for m in memberships:
        m.path = f"{root}{m.group.slug}/"
        m.group_name = m.group.name
        m.facilitates = m.role == Role.FACILITATOR
        m.status_label = m.get_status_display()
        m.step = (
            "join"
            if not m.pseudonym
            else "sign"
            if not m.signed_current or m.status == Status.PENDING_AGREEMENT
            else ""
        )
    return render(request, "groups/mine.html", {"memberships": memberships})


@login_required
def group_home(request: HttpRequest, slug: str) -> HttpResponse:
    membership = selectors.membership_for_user_or_404(request.user, slug)
    if not membership.pseudonym:
        return redirect("groups:take_place", slug=slug)
    # A returning member (pending again) confirms the agreement before coming back in.
    if membership.status == Status.PENDING_AGREEMENT or not (
        selectors.membership_has_signed_current(membership)
    ):
        return redirect("groups:sign", slug=slug)
    group = membership.group
    return render(
        request,
        "groups/home.html",
        {
            "membership": membership,
            "group": group,
            "guidelines": selectors.guidelines_of(group),
            "may_enter_meetings": selectors.membership_may_enter_meetings(membership),
            "pseudonym_form": PseudonymForm(),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def take_place(request: HttpRequest, slug: str) -> HttpResponse:
    membership = selectors.membership_for_user_or_404(request.user, slug)
    if membership.pseudonym:
        return redirect("groups:sign", slug=slug)
    group = membership.group
    form = TakePlaceForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.membership_take_place(
                actor=request.user, group=membership.group, **form.cleaned_data
            )
        except services.GroupError as error:
            _form_errors_from(error, form)
        else:
            messages.success(request, "Welcome. You have signed the agreement.")
            return redirect("groups:home", slug=slug)
    return render(
        request,
        "groups/take_place.html",
        {
            "group": group,
            "form": form,
            "guidelines": selectors.guidelines_of(group),
            "agreement": selectors.current_agreement(group),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def sign(request: HttpRequest, slug: str) -> HttpResponse:
    membership = selectors.membership_for_user_or_404(request.user, slug)
    if not membership.pseudonym:
        return redirect("groups:take_place", slug=slug)
    group = membership.group
    agreement = selectors.current_agreement(group)
    already = (
        selectors.membership_has_signed_current(membership)
        and membership.status != Status.PENDING_AGREEMENT
    )
    form = ResignForm(request.POST or None)
    if request.method == "POST" and not already and form.is_valid():
        try:
            services.agreement_sign(actor=request.user, group=membership.group, **form.cleaned_data)
        except services.GroupError as error:
            _form_errors_from(error, form)
        else:
            messages.success(request, "Thank you for signing.")
            return redirect("groups:home", slug=slug)
    return render(
        request,
        "groups/sign.html",
        {
            "group": group,
            "membership": membership,
            "agreement": agreement,
            "form": form,
            "already_signed": already,
            "guidelines": selectors.guidelines_of(group),
        },
    )


@login_required
def agreements(request: HttpRequest, slug: str) -> HttpResponse:
    membership = selectors.membership_for_user_or_404(request.user, slug)
    return render(
        request,
        "groups/agreements.html",
        {"group": membership.group, "agreements": membership.group.agreements.all()},
    )


@login_required
@require_POST
def change_pseudonym(request: HttpRequest, slug: str) -> HttpResponse:
    membership = selectors.membership_for_user_or_404(request.user, slug)
    if not membership.pseudonym:
        # The first name is chosen together with signing, and is not a "change".
        return redirect("groups:take_place", slug=slug)
    form = PseudonymForm(request.POST)
    if form.is_valid():
        try:
            services.pseudonym_change(
                actor=request.user, group=membership.group, pseudonym=form.cleaned_data["pseudonym"]
            )
        except services.GroupError as error:
            _form_errors_from(error, form)
        else:
            messages.success(request, "Your name in this group is changed.")
            return redirect("groups:home", slug=slug)
    group = membership.group
    return render(
        request,
        "groups/home.html",
        {
            "membership": membership,
            "group": group,
            "guidelines": selectors.guidelines_of(group),
            "may_enter_meetings": selectors.membership_may_enter_meetings(membership),
            "pseudonym_form": form,
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def leave(request: HttpRequest, slug: str) -> HttpResponse:
    membership = selectors.membership_for_user_or_404(request.user, slug)
    if request.method == "POST":
        services.membership_leave(actor=request.user, group=membership.group)
        messages.success(request, f"You have left {membership.group.name}.")
        return redirect("groups:mine")
    return render(request, "groups/leave.html", {"group": membership.group})


@login_required
@require_http_methods(["GET", "POST"])
def invitation(request: HttpRequest, token: str) -> HttpResponse:
    invitation = services.invitation_by_token(token)
    if invitation is None:
        raise Http404
    if request.method == "POST":
        try:
            services.invitation_accept(token=token, user=request.user)
        except services.GroupError as error:
            messages.error(request, str(error))
        else:
            return redirect("groups:take_place", slug=invitation.group.slug)
    return render(
        request,
        "groups/invitation.html",
        {
            "invitation": invitation,
            "group": invitation.group,
            "guidelines": selectors.guidelines_of(invitation.group),
        },
    )


# --- managing a group (its facilitators and site admins) --------------------------------


@login_required
def manage(request: HttpRequest, slug: str) -> HttpResponse:
    group, _ = selectors.group_for_manager_or_404(request.user, slug)
    members = list(selectors.group_members(group))
    return render(
        request,
        "groups/manage.html",
        {
            "group": group,
            "members": members,
            "facilitators": [m for m in members if m.role == Role.FACILITATOR],
            "agreement": selectors.current_agreement(group),
            "unsigned": [m for m in members if not m.signed_current],
            "invitation_form": InvitationForm(),
            "appoint_form": AppointFacilitatorForm() if request.user.is_staff else None,
            "private_link": request.build_absolute_uri(
                reverse("groups:by_link", kwargs={"token": group.link_token})
            ),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def edit(request: HttpRequest, slug: str) -> HttpResponse:
    group, _ = selectors.group_for_manager_or_404(request.user, slug)
    initial = {"guidelines": "\n".join(g.text for g in group.guidelines.all())}
    form = GroupForm(request.POST or None, instance=group, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        rules = data.pop("guidelines")
        group.refresh_from_db()
        try:
            services.group_update(group=group, actor=request.user, **data)
            if rules != [g.text for g in group.guidelines.all()]:
                services.guidelines_replace(group=group, actor=request.user, rules=rules)
        except services.GroupError as error:
            _form_errors_from(error, form)
        else:
            messages.success(request, "The group is updated.")
            return redirect("groups:manage", slug=group.slug)
    return render(request, "groups/edit.html", {"group": group, "form": form})


@login_required
@require_http_methods(["GET", "POST"])
def publish_agreement(request: HttpRequest, slug: str) -> HttpResponse:
    group, _ = selectors.group_for_manager_or_404(request.user, slug)
    current = selectors.current_agreement(group)
    form = AgreementForm(
        request.POST or None,
        initial={
            "text": current.text if current else "",
            "summary": current.summary if current else "",
        },
    )
    if request.method == "POST" and form.is_valid():
        try:
            agreement = services.agreement_publish(
                group=group, actor=request.user, **form.cleaned_data
            )
        except services.GroupError as error:
            _form_errors_from(error, form)
        else:
            messages.success(
                request,
                f"Version {agreement.version} is published. Members will be asked to sign it.",
            )
            return redirect("groups:manage", slug=group.slug)
    return render(
        request, "groups/publish_agreement.html", {"group": group, "form": form, "current": current}
    )


@login_required
@require_POST
def create_invitation(request: HttpRequest, slug: str) -> HttpResponse:
    group, _ = selectors.group_for_manager_or_404(request.user, slug)
    form = InvitationForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Please keep the note under 100 characters.")
        return redirect("groups:manage", slug=group.slug)
    try:
        invitation, token = services.invitation_create(
            group=group, actor=request.user, note=form.cleaned_data["note"]
        )
    except services.GroupError as error:
        messages.error(request, error.message)
        return redirect("groups:manage", slug=group.slug)
    link = request.build_absolute_uri(reverse("groups:invitation", kwargs={"token": token}))
    return render(
        request,
        "groups/invitation_created.html",
        {"group": group, "invitation": invitation, "link": link},
    )


@login_required
@require_POST
def reset_link(request: HttpRequest, slug: str) -> HttpResponse:
    group, _ = selectors.group_for_manager_or_404(request.user, slug)
    try:
        services.group_link_reset(group=group, actor=request.user)
    except services.GroupError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, "The private link is replaced. The old link no longer works.")
    return redirect("groups:manage", slug=group.slug)


@admin_required
@require_http_methods(["GET", "POST"])
def new_group(request: HttpRequest) -> HttpResponse:
    form = NewGroupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        try:
            group = services.group_create(
                actor=request.user,
                guidelines=data.pop("guidelines"),
                agreement_text=data.pop("agreement_text"),
                agreement_summary=data.pop("agreement_summary"),
                **data,
            )
        except services.GroupError as error:
            _form_errors_from(error, form)
        else:
            messages.success(request, f"“{group.name}” is created. Now appoint its facilitators.")
            return redirect("groups:manage", slug=group.slug)
    return render(request, "groups/new.html", {"form": form})


@admin_required
@require_POST
def appoint_facilitator(request: HttpRequest, slug: str) -> HttpResponse:
    group, _ = selectors.group_for_manager_or_404(request.user, slug)
    form = AppointFacilitatorForm(request.POST)
    if form.is_valid():
        try:
            services.facilitator_appoint(
                group=group, actor=request.user, user=form.cleaned_data["username"]
            )
        except services.GroupError as error:
            messages.error(request, error.message)
        else:
            messages.success(
                request,
                "Facilitator appointed. They will choose their own name "
                "in the group and sign the agreement.",
            )
    else:
        messages.error(request, " ".join(form.errors.get("username", ["Please check the handle."])))
    return redirect("groups:manage", slug=group.slug)


@admin_required
@require_POST
def remove_facilitator(request: HttpRequest, slug: str, membership_id: int) -> HttpResponse:
    group, _ = selectors.group_for_manager_or_404(request.user, slug)
    membership = get_object_or_404(Membership, pk=membership_id, group=group, role=Role.FACILITATOR)
    try:
        services.facilitator_remove(membership=membership, actor=request.user)
    except services.GroupError as error:
        messages.error(request, error.message)
    else:
        messages.success(
            request, f"{membership.pseudonym or 'That person'} is no longer a facilitator."
        )
    return redirect("groups:manage", slug=group.slug)
