from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from audit.services import request_ip
from groups.selectors import current_agreement, facilitation_for_user_or_404
from screening import selectors, services
from screening.answers import AnswerErrors
from screening.forms import (
    ApplicationForm,
    DecisionForm,
    DeclineForm,
    InfoRequestForm,
    InfoResponseForm,
    NoteForm,
    QuestionFormSet,
)
from screening.models import STATUS_FOR_REVIEWERS, ApplicationStatus

S = ApplicationStatus


# --- applying ---------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def apply(request: HttpRequest, slug: str) -> HttpResponse:
    link = request.POST.get("link") or request.GET.get("link", "")
    group = selectors.group_for_applying_or_404(request.user, slug, link)
    application = selectors.open_application(group, request.user)
    if application is not None and application.status != S.DRAFT:
        return redirect("screening:application", application_id=application.pk)
    if application is None:
        refusal = services.application_refusal(group, request.user)
        if refusal:
            return render(
                request, "screening/cannot_apply.html", {"group": group, "refusal": refusal}
            )
    questionnaire = (
        application.questionnaire if application else selectors.current_questionnaire(group)
    )
    posted = request.POST if request.method == "POST" else None
    if posted is not None and application is None:
        if questionnaire is None:
            # The group's first application: its questionnaire is stored now, from the
            # same default questions the page showed.
            questionnaire = services.questionnaire_ensure(group=group)
        # (Also when someone else's first application stored them since the page loaded.)
        posted = _default_answers_renamed(posted, questionnaire)
    questions = (
        list(questionnaire.questions.all()) if questionnaire else services.default_questions()
    )
    initial = {
        f"q_{key}": value
        for key, value in ((application.answers or {}) if application else {}).items()
    }
    form = ApplicationForm(questions, posted, initial=initial)
    if request.method == "POST" and form.is_valid():
        submit = "submit" in request.POST
        try:
            application = application or services.application_start(
                group=group, applicant=request.user
            )
            services.application_save(
                application=application, answers=form.raw_answers(posted), submit=submit
            )
        except services.ScreeningError as error:
            form.add_error(None, str(error))
        except AnswerErrors as problems:
            for question_id, text in problems.errors.items():
                form.add_error(f"q_{question_id}" if question_id else None, text)
        else:
            if submit:
                messages.success(
                    request,
                    "Your application is sent. The facilitators will read "
                    "it in confidence; you'll see their answer here.",
                )
                return redirect("screening:application", application_id=application.pk)
            messages.success(request, "Your draft is saved. Only you can see it until you send it.")
            return redirect(f"{request.path}?link={link}" if link else request.path)
    return render(
        request,
        "screening/apply.html",
        {
            "group": group,
            "form": form,
            "application": application,
            "link": link,
            "guidelines": group.guidelines.all(),
            "agreement": current_agreement(group),
        },
    )


def _default_answers_renamed(posted: QueryDict, questionnaire) -> QueryDict:  # noqa: ANN001
    """Answers to the unsaved default questions, named by the stored ones' ids. Only the
    default questionnaire (stored by no one) matches them position for position; answers
    posted against any other are left alone, and refused as not matching its questions."""
    if questionnaire.created_by_id is not None:
        return posted
    renamed = posted.copy()
    for question in questionnaire.questions.all():
        default_name = f"q_default-{question.position}"
        if default_name in renamed:
            renamed.setlist(f"q_{question.pk}", renamed.getlist(default_name))
            del renamed[default_name]
    return renamed


@login_required
def mine(request: HttpRequest) -> HttpResponse:
    applications = list(selectors.applications_of_user(request.user))
    response = render(request, "screening/mine.html", {"applications": applications})
    for application in applications:
        if application.has_news:
            services.application_mark_seen(application=application)
    return response


@login_required
def application(request: HttpRequest, application_id: int) -> HttpResponse:
    application = selectors.application_for_applicant_or_404(request.user, application_id)
    services.application_mark_seen(application=application)
    return render(
        request,
        "screening/application.html",
        {
            "application": application,
            "info_form": InfoResponseForm(),
            "questions": _answered(application),
        },
    )


@login_required
@require_POST
def provide_info(request: HttpRequest, application_id: int) -> HttpResponse:
    application = selectors.application_for_applicant_or_404(request.user, application_id)
    form = InfoResponseForm(request.POST)
    if form.is_valid():
        try:
            services.application_provide_info(
                application=application, response=form.cleaned_data["response"]
            )
        except services.ScreeningError as error:
            messages.error(request, str(error))
        else:
            messages.success(request, "Your answer is sent to the facilitators.")
            return redirect("screening:application", application_id=application.pk)
    return render(
        request,
        "screening/application.html",
        {"application": application, "info_form": form, "questions": _answered(application)},
    )


@login_required
@require_http_methods(["GET", "POST"])
def withdraw(request: HttpRequest, application_id: int) -> HttpResponse:
    """Asks first: withdrawing cannot be undone (a new application starts over)."""
    application = selectors.application_for_applicant_or_404(request.user, application_id)
    if request.method == "GET":
        if not application.is_open:
            return redirect("screening:application", application_id=application.pk)
        return render(request, "screening/withdraw.html", {"application": application})
    try:
        services.application_withdraw(application=application)
    except services.ScreeningError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, "Your application is withdrawn.")
    return redirect("screening:mine")


def _answered(application) -> list[tuple]:  # noqa: ANN001
    answers = application.answers or {}
    return [(q, answers.get(str(q.pk))) for q in application.questionnaire.questions.all()]


# --- reviewing --------------------------------------------------------------------------


@login_required
def queue(request: HttpRequest, slug: str) -> HttpResponse:
    facilitator = facilitation_for_user_or_404(request.user, slug)
    status = request.GET.get("status", S.SUBMITTED)
    if status not in S.values and status != "":
        status = S.SUBMITTED
    try:
        after = int(request.GET["after"]) if request.GET.get("after") else None
    except ValueError:
        after = None  # a hand-edited address: the first page
    rows = selectors.review_queue(facilitator.group, status, after=after)
    next_page = None
    if len(rows) > selectors.QUEUE_PAGE_SIZE:
        del rows[selectors.QUEUE_PAGE_SIZE :]
        query = request.GET.copy()
        query["after"] = str(rows[-1].pk)
        next_page = f"?{query.urlencode()}"
    now = timezone.now()
    applications = [(a, now - (a.waiting_since or a.created_at)) for a in rows]
    return render(
        request,
        "screening/queue.html",
        {
            "group": facilitator.group,
            "applications": applications,
            "next_page": next_page,
            # Each row's link is built on the queue's own address, without a reverse() per row.
            "review_root": reverse("screening:queue", args=[facilitator.group.slug]),
            "status": status,
            "statuses": [
                (value, label) for value, label in STATUS_FOR_REVIEWERS.items() if value != S.DRAFT
            ],
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def review(request: HttpRequest, slug: str, application_id: int) -> HttpResponse:
    application, facilitator = selectors.application_for_facilitator_or_404(
        request.user, slug, application_id
    )
    if request.method == "POST":
        return _decide(request, application, facilitator)
    return _render_review(request, application, facilitator)


def _render_review(request, application, facilitator, **forms) -> HttpResponse:  # noqa: ANN001
    # Every page that shows the answers is a look, including one shown again after a
    # refused form (otherwise a crafted POST would read them without a trace).
    services.application_record_view(
        application=application, actor=request.user, ip=request_ip(request)
    )
    revision = {"revision": application.revision}
    return render(
        request,
        "screening/review.html",
        {
            "application": application,
            "group": application.group,
            "questions": _answered(application),
            "notes": application.notes.select_related("author"),
            # Each form its own ids (auto_id): five forms share field names on one page.
            "note_form": forms.get("note_form") or NoteForm(auto_id="note_%s"),
            "info_form": forms.get("info_form")
            or InfoRequestForm(initial=revision, auto_id="request_info_%s"),
            "approve_form": forms.get("approve_form")
            or DecisionForm(initial=revision, auto_id="approve_%s"),
            "waitlist_form": forms.get("waitlist_form")
            or DecisionForm(initial=revision, auto_id="waitlist_%s"),
            "decline_form": forms.get("decline_form")
            or DeclineForm(initial=revision, auto_id="decline_%s"),
        },
    )


def _decide(request, application, facilitator) -> HttpResponse:  # noqa: ANN001
    action = request.POST.get("action", "")
    form_classes = {
        "note": NoteForm,
        "request_info": InfoRequestForm,
        "approve": DecisionForm,
        "waitlist": DecisionForm,
        "decline": DeclineForm,
    }
    if action not in form_classes:
        messages.error(request, "Unknown action.")
        return redirect(
            "screening:review", slug=application.group.slug, application_id=application.pk
        )
    form = form_classes[action](request.POST, auto_id=f"{action}_%s")
    form_key = {
        "note": "note_form",
        "request_info": "info_form",
        "approve": "approve_form",
        "waitlist": "waitlist_form",
        "decline": "decline_form",
    }[action]
    if not form.is_valid():
        return _render_review(request, application, facilitator, **{form_key: form})
    data = form.cleaned_data
    try:
        if action == "note":
            services.note_add(application=application, actor=request.user, body=data["body"])
            messages.success(request, "Note added.")
        elif action == "request_info":
            services.application_request_info(
                application=application,
                actor=request.user,
                question=data["question"],
                revision=data["revision"],
            )
            messages.success(request, "Your question is sent to the applicant.")
        elif action == "approve":
            result = services.application_approve(
                application=application,
                actor=request.user,
                revision=data["revision"],
                message=data["message"],
            )
            messages.success(
                request,
                "Approved."
                if result.status == S.APPROVED
                else "The group is full, so the applicant is on the waiting list.",
            )
        elif action == "waitlist":
            services.application_waitlist(
                application=application,
                actor=request.user,
                revision=data["revision"],
                message=data["message"],
            )
            messages.success(request, "The applicant is on the waiting list.")
        elif action == "decline":
            services.application_decline(
                application=application,
                actor=request.user,
                revision=data["revision"],
                message=data["message"],
                internal_reason=data["internal_reason"],
            )
            messages.success(request, "Declined.")
    except services.ScreeningError as error:
        messages.error(request, str(error))
        application.refresh_from_db()
        return _render_review(request, application, facilitator)
    return redirect("screening:review", slug=application.group.slug, application_id=application.pk)


@login_required
@require_http_methods(["GET", "POST"])
def questionnaire(request: HttpRequest, slug: str) -> HttpResponse:
    facilitator = facilitation_for_user_or_404(request.user, slug)
    group = facilitator.group
    current = selectors.current_questionnaire(group)
    shown = list(current.questions.all()) if current else services.default_questions()
    initial = [
        {
            "kind": q.kind,
            "text": q.text,
            "help_text": q.help_text,
            "required": q.required,
            "choices": "\n".join(q.choices),
            "ORDER": q.position,
        }
        for q in shown
    ]
    formset = QuestionFormSet(request.POST or None, initial=initial)
    if request.method == "POST" and formset.is_valid():
        # ordered_forms leaves out deleted and untouched blank forms, in the chosen order.
        fields = ("kind", "text", "help_text", "required", "choices")
        questions = [
            {key: form.cleaned_data[key] for key in fields}
            for form in formset.ordered_forms
            if form.cleaned_data.get("text")
        ]
        try:
            published = services.questionnaire_publish(
                group=group, actor=request.user, questions=questions
            )
        except services.ScreeningError as error:
            messages.error(request, str(error))
        else:
            messages.success(
                request,
                f"Version {published.version} of the questions is live. "
                "Applications already started keep the questions they had.",
            )
            return redirect("screening:questionnaire", slug=slug)
    return render(
        request,
        "screening/questionnaire.html",
        {"group": group, "formset": formset, "current": current},
    )
