"""Questionnaires, applications and decisions. The status machine lives here:

    draft → submitted → info_requested ↔ submitted → approved / declined / waitlisted
    waitlisted → approved;  draft / submitted / info_requested / waitlisted → withdrawn

Every transition bumps ``revision`` (so a stale page cannot overwrite a newer decision),
is audited in the same transaction, and tells the applicant (in the app, and by an email
that never names the group when they have a confirmed recovery email).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from audit.events import Action
from audit.services import record_event
from groups import services as group_services
from groups.models import Group, Membership
from groups.selectors import facilitation_now, group_has_room
from screening.answers import clean_answers
from screening.models import (
    OPEN_STATUSES,
    Application,
    ApplicationStatus,
    Question,
    QuestionKind,
    Questionnaire,
    ReviewerNote,
)
from screening.selectors import current_questionnaire
from supportgroups.errors import ServiceError
from supportgroups.mail import email_people_on_commit

S = ApplicationStatus

DEFAULT_QUESTIONS = [
    {
        "kind": QuestionKind.YES_NO,
        "text": "Have you read who this group is for, and does it describe you?",
        "help_text": "The group's eligibility is shown above.",
        "required": True,
    },
    {
        "kind": QuestionKind.LONG_TEXT,
        "text": "What brings you to this group?",
        "help_text": "Share as much or as little as you like. Only the facilitators read this.",
        "required": True,
    },
    {
        "kind": QuestionKind.SINGLE_CHOICE,
        "text": "How would you like to take part at first?",
        "help_text": "",
        "required": True,
        "choices": ["Mostly listening", "Listening and sometimes sharing", "Sharing and talking"],
    },
    {
        "kind": QuestionKind.YES_NO,
        "text": "Are you safe at the moment?",
        "help_text": "If you are not safe right now, please use the crisis contacts shown on "
        "this page straight away — this group is not an emergency service.",
        "required": True,
    },
]


class ScreeningError(ServiceError):
    """A refused step in applying or reviewing."""


class StaleDecision(ScreeningError):
    """Someone else changed the application since this page was loaded."""

    def __init__(self) -> None:
        super().__init__(
            "stale",
            "Another facilitator changed this application while you had it open. "
            "Here it is as it stands now; please look again before deciding.",
        )


# --- questionnaires ---------------------------------------------------------------------


def default_questions() -> list[Question]:
    """The questions a group starts with, unsaved: shown until it stores a questionnaire
    (its first application, or its facilitators' first edit)."""
    return [
        _question(question, position=position)
        for position, question in enumerate(DEFAULT_QUESTIONS, start=1)
    ]


def _question(question: dict, *, position: int, questionnaire: Questionnaire | None = None):  # noqa: ANN202
    """A Question (not saved) from the editor's or the defaults' dict."""
    return Question(
        questionnaire=questionnaire,
        position=position,
        kind=question["kind"],
        text=question["text"],
        help_text=question.get("help_text", ""),
        required=question.get("required", True),
        choices=list(question.get("choices", [])),
    )


@transaction.atomic
def questionnaire_ensure(*, group: Group) -> Questionnaire:
    """The group's latest questionnaire, first stored from the default questions if it
    has none yet (version 1, audited). Called by the services that need stored questions
    (starting an application); pages read ``selectors.current_questionnaire``."""
    current = current_questionnaire(group)
    if current is None:
        # Two first applications at once store version 1 once.
        Group.objects.select_for_update(no_key=True).filter(pk=group.pk).first()
        current = current_questionnaire(group)
    if current is None:
        current = _questionnaire_create(group=group, actor=None, questions=DEFAULT_QUESTIONS)
    return current


@transaction.atomic
def questionnaire_publish(
    *, group: Group, actor: User, questions: list[dict[str, Any]]
) -> Questionnaire:
    _require_facilitator(actor, group.pk)
    if not questions:
        raise ScreeningError("no_questions", "A questionnaire needs at least one question.")
    Group.objects.select_for_update(no_key=True).filter(pk=group.pk).first()
    return _questionnaire_create(group=group, actor=actor, questions=questions)


def _questionnaire_create(
    *, group: Group, actor: User | None, questions: list[dict]
) -> Questionnaire:
    latest = group.questionnaires.order_by("-version").first()
    questionnaire = Questionnaire.objects.create(
        group=group, version=(latest.version + 1) if latest else 1, created_by=actor
    )
    Question.objects.bulk_create(
        _question(question, position=position, questionnaire=questionnaire)
        for position, question in enumerate(questions, start=1)
    )
    record_event(
        action=Action.QUESTIONNAIRE_PUBLISHED,
        actor=actor,
        target=questionnaire,
        group_id=group.pk,
        extra={"version": questionnaire.version, "questions": len(questions)},
    )
    return questionnaire


# --- applying ---------------------------------------------------------------------------


def application_refusal(group: Group, applicant: User) -> str | None:
    """Why this person can't start an application to this group now, or None."""
    membership = Membership.objects.filter(group=group, user=applicant).first()
    if membership is not None and membership.is_current:
        return "You already have a place in this group."
    if membership is not None and membership.status == "removed":
        return "You can't apply to this group again."
    last_declined = (
        Application.objects.filter(group=group, applicant=applicant, status=S.DECLINED)
        .order_by("-decided_at")
        .first()
    )
    if last_declined is not None and last_declined.decided_at:
        allowed_from = last_declined.decided_at + timedelta(days=group.reapply_cooldown_days)
        if timezone.now() < allowed_from:
            return (
                "You can apply to this group again from "
                f"{timezone.localtime(allowed_from):%-d %B %Y}."
            )
    return None


@transaction.atomic
def application_start(*, group: Group, applicant: User) -> Application:
    """The applicant's open application to this group, created as a draft if needed."""
    existing = Application.objects.filter(
        group=group, applicant=applicant, status__in=OPEN_STATUSES
    ).first()
    if existing is not None:
        return existing
    refusal = application_refusal(group, applicant)
    if refusal:
        raise ScreeningError("may_not_apply", refusal)
    try:
        with transaction.atomic():
            application = Application.objects.create(
                group=group,
                applicant=applicant,
                questionnaire=questionnaire_ensure(group=group),
                answers={},
            )
    except IntegrityError:  # a second tab created it at the same moment
        return Application.objects.get(group=group, applicant=applicant, status__in=OPEN_STATUSES)
    record_event(
        action=Action.APPLICATION_STARTED,
        actor=applicant,
        subject=applicant,
        target=application,
        group_id=group.pk,
    )
    return application


@transaction.atomic
def application_save(
    *, application: Application, answers: dict[str, Any], submit: bool
) -> Application:
    """Save the answers as a draft, or submit them (then every required answer is needed).

    Raises ``screening.answers.AnswerErrors`` listing what to fix; the draft keeps what the
    person typed even then (the caller saves with ``submit=False`` first).
    """
    application = _lock(application)
    if application.status not in (S.DRAFT,):
        raise ScreeningError("already_sent", "This application has already been sent.")
    questions = list(application.questionnaire.questions.all())
    application.answers = clean_answers(questions, answers, require_all=submit)
    fields = ["answers", "updated_at", "seen_by_applicant_at"]
    application.updated_at = timezone.now()
    application.seen_by_applicant_at = application.updated_at  # their own step isn't news
    if submit:
        _transition(
            application,
            S.SUBMITTED,
            actor=application.applicant,
            fields=fields,
            action=Action.APPLICATION_SUBMITTED,
            notify=False,
        )
        application.submitted_at = timezone.now()
        application.save(update_fields=["submitted_at"])
    else:
        application.save(update_fields=fields)
    return application


@transaction.atomic
def application_provide_info(*, application: Application, response: str) -> Application:
    application = _lock(application)
    if application.status != S.INFO_REQUESTED:
        raise ScreeningError("nothing_asked", "Nothing was asked on this application.")
    application.info_response = response.strip()
    _transition(
        application,
        S.SUBMITTED,
        actor=application.applicant,
        fields=["info_response"],
        action=Action.APPLICATION_INFO_PROVIDED,
        notify=False,
    )
    return application


@transaction.atomic
def application_withdraw(*, application: Application) -> Application:
    application = _lock(application)
    if application.status not in OPEN_STATUSES:
        raise ScreeningError("not_withdrawable", "This application can't be withdrawn now.")
    application.decided_at = timezone.now()
    _transition(
        application,
        S.WITHDRAWN,
        actor=application.applicant,
        fields=["decided_at"],
        action=Action.APPLICATION_WITHDRAWN,
        notify=False,
    )
    return application


def application_mark_seen(*, application: Application) -> None:
    Application.objects.filter(pk=application.pk).update(seen_by_applicant_at=timezone.now())


# --- reviewing --------------------------------------------------------------------------


def application_record_view(*, application: Application, actor: User, ip: str | None) -> None:
    """Opening the answers is itself an event the applicant can see."""
    with transaction.atomic():
        _require_facilitator(actor, application.group_id)
        record_event(
            action=Action.APPLICATION_ANSWERS_VIEWED,
            actor=actor,
            subject=application.applicant,
            target=application,
            group_id=application.group_id,
            ip=ip,
        )


@transaction.atomic
def note_add(*, application: Application, actor: User, body: str) -> ReviewerNote:
    author = _require_facilitator(actor, application.group_id)
    if Application.objects.filter(pk=application.pk, purged_at__isnull=False).exists():
        # A note written now would outlive the retention policy that deleted the rest.
        raise ScreeningError(
            "purged", "This application's details were deleted; notes can't be added."
        )
    note = ReviewerNote.objects.create(application=application, author=author, body=body.strip())
    record_event(
        action=Action.REVIEWER_NOTE_ADDED,
        actor=actor,
        target=application,
        group_id=application.group_id,
    )
    return note


@transaction.atomic
def application_request_info(
    *, application: Application, actor: User, question: str, revision: int
) -> Application:
    _require_facilitator(actor, application.group_id)
    application = _lock(application, revision=revision)
    _require(application, {S.SUBMITTED})
    application.info_request = question.strip()
    application.info_response = None
    _transition(
        application,
        S.INFO_REQUESTED,
        actor=actor,
        fields=["info_request", "info_response"],
        action=Action.APPLICATION_INFO_REQUESTED,
    )
    return application


@transaction.atomic
def application_approve(
    *, application: Application, actor: User, revision: int, message: str = ""
) -> Application:
    """Approve: a place if the group has room, otherwise the waiting list (in order)."""
    _require_facilitator(actor, application.group_id)
    application = _lock(application, revision=revision)
    _require(application, {S.SUBMITTED, S.WAITLISTED})
    Group.objects.select_for_update(no_key=True).filter(pk=application.group_id).first()
    if application.status == S.WAITLISTED:
        first = _waitlist(application.group).first()
        if first is not None and first.pk != application.pk:
            raise ScreeningError(
                "waitlist_order", "Offer places in waiting-list order: someone has waited longer."
            )
    application.message_to_applicant = message.strip() or None
    # A free place goes to the waiting list first: a new approval queues behind it.
    others_waiting = application.status == S.SUBMITTED and _waitlist(application.group).exists()
    if others_waiting or not group_has_room(application.group):
        if application.status == S.WAITLISTED:
            raise ScreeningError("group_full", "The group is full: a place must free up first.")
        return _decide(application, S.WAITLISTED, actor=actor)
    try:
        group_services.membership_create(
            group=application.group,
            user=application.applicant,
            actor=actor,
            reason="screening",
        )
    except group_services.GroupError as error:  # e.g. joined through an invitation meanwhile
        raise ScreeningError(
            "already_member", "This applicant already has a place in the group."
        ) from error
    return _decide(application, S.APPROVED, actor=actor)


@transaction.atomic
def application_waitlist(
    *, application: Application, actor: User, revision: int, message: str = ""
) -> Application:
    _require_facilitator(actor, application.group_id)
    application = _lock(application, revision=revision)
    _require(application, {S.SUBMITTED})
    application.message_to_applicant = message.strip() or None
    return _decide(application, S.WAITLISTED, actor=actor)


@transaction.atomic
def application_decline(
    *,
    application: Application,
    actor: User,
    revision: int,
    message: str = "",
    internal_reason: str = "",
) -> Application:
    """Decline. The message goes to the applicant; the internal reason stays a private note."""
    facilitator = _require_facilitator(actor, application.group_id)
    application = _lock(application, revision=revision)
    _require(application, {S.SUBMITTED, S.INFO_REQUESTED, S.WAITLISTED})
    application.message_to_applicant = message.strip() or None
    if internal_reason.strip():
        ReviewerNote.objects.create(
            application=application,
            author=facilitator,
            body=f"Reason for declining: {internal_reason.strip()}",
        )
    return _decide(application, S.DECLINED, actor=actor)


# Each decision: the time it stamps, and its name in the audit event.
_DECISIONS = {
    S.APPROVED: ("decided_at", "approved"),
    S.WAITLISTED: ("waitlisted_at", "waitlisted"),
    S.DECLINED: ("decided_at", "declined"),
}


def _decide(application: Application, status: str, *, actor: User) -> Application:
    """Record a decision and its message to the applicant, audited as APPLICATION_DECIDED."""
    stamp, decision = _DECISIONS[status]
    setattr(application, stamp, timezone.now())
    _transition(
        application,
        status,
        actor=actor,
        fields=["message_to_applicant", stamp],
        action=Action.APPLICATION_DECIDED,
        extra={"decision": decision},
    )
    return application


def _waitlist(group: Group):
    return Application.objects.filter(group=group, status=S.WAITLISTED).order_by(
        "waitlisted_at", "pk"
    )


# --- retention --------------------------------------------------------------------------


@transaction.atomic
def applications_purge_expired(*, now: datetime | None = None) -> int:
    """Delete answers, notes and messages of declined and withdrawn applications after
    ``SCREENING_RETENTION_DAYS``. The bare record (status, dates) stays for cool-downs."""
    now = now or timezone.now()
    expired = Application.objects.filter(
        status__in=[S.DECLINED, S.WITHDRAWN],
        decided_at__lt=now - timedelta(days=settings.SCREENING_RETENTION_DAYS),
        purged_at__isnull=True,
    )
    ids = list(expired.values_list("pk", flat=True))
    if ids:
        ReviewerNote.objects.filter(application_id__in=ids).delete()
        Application.objects.filter(pk__in=ids).update(
            answers=None,
            info_request=None,
            info_response=None,
            message_to_applicant=None,
            purged_at=now,
        )
        record_event(action=Action.APPLICATIONS_PURGED, extra={"applications": len(ids)})
    return len(ids)


# --- helpers ----------------------------------------------------------------------------


def _lock(application: Application, *, revision: int | None = None) -> Application:
    locked = (
        Application.objects.select_for_update(no_key=True)
        .select_related("group", "applicant", "questionnaire")
        .get(pk=application.pk)
    )
    if revision is not None and locked.revision != revision:
        raise StaleDecision()
    return locked


def _require_facilitator(actor: User, group_id: int) -> Membership:
    """The actor's facilitator place in the group: services re-check the role, whatever
    the page checked when it loaded (a facilitator may have been demoted since)."""
    facilitator = facilitation_now(actor, group_id)
    if facilitator is None:
        raise ScreeningError("not_facilitator", "Only this group's facilitators can do that.")
    return facilitator


def _require(application: Application, allowed: set[str]) -> None:
    if application.status not in allowed:
        raise ScreeningError(
            "wrong_status",
            f"This application is “{application.get_status_display()}”, so that can't be done now.",
        )


def _transition(
    application: Application,
    status: str,
    *,
    actor: User,
    fields: list[str],
    action: Action,
    extra: dict | None = None,
    notify: bool = True,
) -> None:
    previous = application.status
    application.status = status
    application.revision += 1
    application.updated_at = timezone.now()
    fields = [*fields, "status", "revision", "updated_at"]
    if actor == application.applicant:  # the applicant's own step is not news to them
        application.seen_by_applicant_at = application.updated_at
        fields = [*dict.fromkeys([*fields, "seen_by_applicant_at"])]
    application.save(update_fields=fields)
    record_event(
        action=action,
        actor=actor,
        subject=application.applicant,
        target=application,
        group_id=application.group_id,
        extra={"from": previous, "to": status, **(extra or {})},
    )
    if notify:
        _email_news(application)


def _email_news(application: Application) -> None:
    # Never the group's name or topic: an email can be seen by someone else.
    body = (
        f"Hello,\n\nThere is news about your application at {settings.SITE_NAME}. "
        f"Sign in to read it: {settings.SITE_URL}{reverse('screening:mine')}\n"
    )
    email_people_on_commit(
        people=[application.applicant], subject="News about your application", body=body
    )
