from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from audit.services import request_ip
from board.selectors import board_entry, post_or_404, thread_or_404
from groups.models import CURRENT_STATUSES, Membership
from groups.selectors import (
    facilitation_for_user_or_404,
    membership_for_user_or_404,
    membership_step_missing,
    memberships_of_user,
)
from moderation import selectors, services
from moderation.forms import (
    ActionForm,
    HandleFlagForm,
    HidePostForm,
    LogFilterForm,
    MemberFilterForm,
    ReportPostForm,
    ResolveForm,
    RevealForm,
    SafetyFlagForm,
)
from moderation.models import Report, SafetyFlag


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    groups = list(selectors.facilitated_groups(request.user))
    if not groups:
        raise Http404
    # A group whose gate (name, current agreement) the person has not passed shows no
    # counts, only the step to take.
    steps = {
        m.group_id: step
        for m in memberships_of_user(request.user)
        if (step := membership_step_missing(m)) is not None
    }
    return render(
        request,
        "moderation/dashboard.html",
        {
            "summaries": selectors.group_summaries([g for g in groups if g.pk not in steps]),
            "waiting_for_me": [(g, steps[g.pk]) for g in groups if g.pk in steps],
            "now": timezone.now(),
            "FACILITATES": True,
        },
    )


@login_required
def group_dashboard(request: HttpRequest, slug: str) -> HttpResponse:
    """What needs the facilitator now: each kind's count and its newest few, linking to
    the full lists. The member list and the moderation log have pages of their own."""
    facilitator = facilitation_for_user_or_404(request.user, slug)
    group = facilitator.group
    counts, newest = selectors.needs_you_now(group)
    now = timezone.now()
    return render(
        request,
        "moderation/group.html",
        {
            "group": group,
            "FACILITATES": True,  # (the navigation's question, answered already)
            "here": reverse("moderation:group", args=[group.slug]),
            "counts": counts,
            **newest,
            "meetings": selectors.next_meetings(group, now=now),
            "now": now,
        },
    )


def _next_page_link(request: HttpRequest, rows: list, key: str) -> str | None:
    """The address of the next page (the same filters, after this page's last row), or
    None when the selector's one extra row says there is none."""
    if len(rows) <= selectors.PAGE_SIZE:
        return None
    del rows[selectors.PAGE_SIZE :]
    query = request.GET.copy()
    query[key] = str(rows[-1].pk)
    return f"?{query.urlencode()}"


@login_required
def members(request: HttpRequest, slug: str) -> HttpResponse:
    facilitator = facilitation_for_user_or_404(request.user, slug)
    group = facilitator.group
    form = MemberFilterForm(request.GET)
    # A filter that is not understood (a hand-edited address) shows everyone, and says so.
    data = form.cleaned_data if form.is_valid() else {"status": "", "name": "", "after": None}
    rows = selectors.member_page(
        group, status=data["status"], name=data["name"].strip(), after=data["after"]
    )
    next_page = _next_page_link(request, rows, "after") if form.is_valid() else None
    return render(
        request,
        "moderation/members.html",
        {
            "group": group,
            "FACILITATES": True,
            "here": reverse("moderation:group", args=[group.slug]),
            "form": form,
            "members": rows,
            "filtered": any(request.GET.get(k) for k in ("status", "name")),
            "next_page": next_page,
        },
    )


@login_required
def log(request: HttpRequest, slug: str) -> HttpResponse:
    facilitator = facilitation_for_user_or_404(request.user, slug)
    group = facilitator.group
    form = LogFilterForm(request.GET)
    data = form.cleaned_data if form.is_valid() else {"kind": "", "member": None, "before": None}
    about = None
    if data["member"] is not None:
        about = _member_or_404(facilitator, data["member"])
    rows = selectors.log_page(
        group, kind=data["kind"], member=data["member"], before=data["before"]
    )
    next_page = _next_page_link(request, rows, "before") if form.is_valid() else None
    return render(
        request,
        "moderation/log.html",
        {
            "group": group,
            "FACILITATES": True,
            "here": reverse("moderation:group", args=[group.slug]),
            "form": form,
            "about": about,
            "log": rows,
            "next_page": next_page,
        },
    )


def _member_or_404(facilitator: Membership, membership_id: int) -> Membership:
    membership = (
        Membership.objects.select_related("group")
        .filter(pk=membership_id, group=facilitator.group)
        .first()
    )
    if membership is None:
        raise Http404
    return membership


@login_required
@require_http_methods(["GET", "POST"])
def member(request: HttpRequest, slug: str, membership_id: int) -> HttpResponse:
    facilitator = facilitation_for_user_or_404(request.user, slug)
    membership = _member_or_404(facilitator, membership_id)
    form = ActionForm(facilitator.group, request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.action_take(
                membership=membership,
                actor=request.user,
                kind=data["kind"],
                guideline_number=data["guideline"],
                reason=data["reason"],
                minutes=data["minutes"],
            )
        except services.ModerationError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, f"Done. {membership.pseudonym} can see this step and why.")
            return redirect("moderation:member", slug=slug, membership_id=membership.pk)
    return render(
        request,
        "moderation/member.html",
        {
            "group": facilitator.group,
            "membership": membership,
            "form": form,
            "history": membership.moderation_actions.select_related("actor"),
            "reveals": membership.contact_reveals.select_related("actor"),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def reveal(request: HttpRequest, slug: str, membership_id: int) -> HttpResponse:
    facilitator = facilitation_for_user_or_404(request.user, slug)
    membership = _member_or_404(facilitator, membership_id)
    form = RevealForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            contact = services.contact_reveal(
                membership=membership,
                actor=request.user,
                reason=form.cleaned_data["reason"],
                ip=request_ip(request),
            )
        except services.ModerationError as error:
            form.add_error("reason", str(error))
        else:
            return render(
                request,
                "moderation/revealed.html",
                {"group": facilitator.group, "membership": membership, "contact": contact},
            )
    return render(
        request,
        "moderation/reveal.html",
        {"group": facilitator.group, "membership": membership, "form": form},
    )


@login_required
@require_http_methods(["GET", "POST"])
def report(request: HttpRequest, slug: str, report_id: int) -> HttpResponse:
    facilitator = facilitation_for_user_or_404(request.user, slug)
    found = (
        Report.objects.select_related("reporter", "reported")
        .filter(pk=report_id, group=facilitator.group)
        .first()
    )
    if found is None:
        raise Http404
    form = ResolveForm(request.POST or None)
    form.fields["hide_message"].label = "Hide the post" if found.post_id else "Hide the message"
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.report_resolve(
                report=found,
                actor=request.user,
                action=data["action"],
                note=data["note"],
                minutes=data["minutes"],
                hide_message=data["hide_message"],
            )
        except services.ModerationError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, "The report is resolved.")
            return redirect("moderation:group", slug=slug)
    return render(
        request,
        "moderation/report.html",
        {"group": facilitator.group, "report": found, "form": form},
    )


@login_required
@require_http_methods(["GET", "POST"])
def report_post(request: HttpRequest, slug: str, number: int, post_number: int) -> HttpResponse:
    """A member reports a post on the board: behind the board's own door."""
    entry = board_entry(request.user, slug)
    if entry.refusal:
        raise Http404
    group = entry.membership.group
    post = post_or_404(thread_or_404(group.pk, number), post_number)
    already = selectors.own_report_of_post(entry.membership, post.pk)
    form = ReportPostForm(group.guidelines.all(), request.POST or None)
    if request.method == "POST" and already is None and form.is_valid():
        try:
            services.post_report_file(
                actor=request.user,
                post=post,
                guideline_number=form.cleaned_data["guideline"],
                note=form.cleaned_data["note"],
            )
        except services.ModerationError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, "Thank you. The group's facilitators will look at it.")
            return redirect("board:thread", slug=slug, number=number)
    return render(
        request,
        "moderation/report_post.html",
        {"group": group, "post": post, "form": form, "already": already},
    )


@login_required
@require_http_methods(["GET", "POST"])
def hide_post(request: HttpRequest, slug: str, number: int, post_number: int) -> HttpResponse:
    """A facilitator hides a post straight from its thread, as "Hide" in a meeting room:
    it reads "Hidden by a facilitator." and its author reads the step and its rule. (A
    report is not needed first.)"""
    facilitator = facilitation_for_user_or_404(request.user, slug)
    group = facilitator.group
    post = post_or_404(thread_or_404(group.pk, number), post_number)
    thread_url = reverse("board:thread", kwargs={"slug": slug, "number": number})
    hideable = post.body is not None and post.hidden_at is None and post.author_id is not None
    form = HidePostForm(group.guidelines.all(), request.POST or None)
    if request.method == "POST" and hideable and form.is_valid():
        try:
            services.post_hide(
                post=post,
                actor=request.user,
                guideline_number=form.cleaned_data["guideline"],
                reason=form.cleaned_data["reason"],
            )
        except services.ModerationError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, "The post is hidden. Its author can read why.")
            return redirect(f"{thread_url}#post-{post.number}")
    return render(
        request,
        "moderation/hide_post.html",
        {
            "group": group,
            "post": post,
            "form": form,
            "hideable": hideable,
            "thread_url": thread_url,
        },
    )


@login_required
@require_POST
def handle_flag(request: HttpRequest, slug: str, flag_id: int) -> HttpResponse:
    facilitator = facilitation_for_user_or_404(request.user, slug)
    flag = SafetyFlag.objects.filter(pk=flag_id, group=facilitator.group).first()
    if flag is None:
        raise Http404
    form = HandleFlagForm(request.POST)
    if form.is_valid():
        try:
            services.safety_flag_handle(
                flag=flag, actor=request.user, note=form.cleaned_data["note"]
            )
        except services.ModerationError as error:
            messages.error(request, str(error))
        else:
            messages.success(request, "Marked as handled.")
    return redirect("moderation:group", slug=slug)


# --- members ----------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def raise_flag(request: HttpRequest, slug: str) -> HttpResponse:
    membership = membership_for_user_or_404(request.user, slug)
    members = Membership.objects.filter(group=membership.group, status__in=CURRENT_STATUSES)
    # From a post ("Report this post" → "tell the facilitators now"): that person is chosen.
    initial = {"about": request.GET.get("about")}
    form = SafetyFlagForm(membership, members, request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        about = members.filter(pk=form.cleaned_data["about"]).first()
        try:
            services.safety_flag_raise(
                actor=request.user,
                group=membership.group,
                about=about,
                note=form.cleaned_data["note"],
            )
        except services.ModerationError as error:
            form.add_error(None, str(error))
        else:
            return render(request, "moderation/flag_raised.html", {"group": membership.group})
    return render(request, "moderation/raise_flag.html", {"group": membership.group, "form": form})


@login_required
def about_me(request: HttpRequest) -> HttpResponse:
    return render(
        request, "moderation/about_me.html", {"actions": selectors.actions_about_user(request.user)}
    )
