"""The review queue and decisions: the queue (filter, oldest first, age), the application
page (every look audited), shared private notes, asking for more, approving, declining
with a cool-down, and the waiting list of a full group."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from audit.events import Action
from groups import services as group_services
from groups.models import Membership, Status
from screening import services
from screening.models import Application, ApplicationStatus, ReviewerNote
from tests.screening.conftest import (
    events,
    form_data,
    fresh,
    html,
    make_person,
    page_forms,
    questions_of,
    review_url,
    sign_in_verified,
    signed_in_applicant,
    start,
    submitted,
    valid_answers,
)

pytestmark = pytest.mark.django_db

S = ApplicationStatus


def queue_url(group, status=None):
    return f"/screening/review/{group.slug}/" + ("" if status is None else f"?status={status}")


def decision_form(response, action) -> dict:
    """The form for ``action`` on the review page, as the browser would post it."""
    (form,) = [f for f in page_forms(response) if f.get("action") == action]
    return form


def decide(client, application, action, **fields):
    """Open the review page, fill in one of its forms and send it, as a facilitator would."""
    data = decision_form(client.get(review_url(application)), action)
    data.update(fields)
    return client.post(review_url(application), data, follow=True)


def age_submission(application, **delta):
    Application.objects.filter(pk=application.pk).update(
        submitted_at=timezone.now() - timedelta(**delta)
    )


# --- the queue --------------------------------------------------------------------------------


def test_the_queue_lists_sent_applications_oldest_first_with_their_age(world):
    newer = submitted(world.group, make_person("applicant-newer"))
    older = submitted(world.group, make_person("applicant-older"))
    age_submission(older, days=3, hours=2)
    age_submission(newer, hours=5)
    start(world.group, make_person("applicant-drafting"))  # drafts are nobody's business
    submitted(world.other_group, make_person("applicant-elsewhere"))
    client = sign_in_verified(world.facilitator.user)

    response = client.get(queue_url(world.group))

    assert response.status_code == 200
    page = html(response)
    rows = [line for line in page.splitlines() if "Application #" in line]
    assert [f"Application #{older.pk}<" in row for row in rows] == [True, False]
    assert len(rows) == 2
    assert "3 days" in page
    assert "5 hours" in page
    # Pseudonymous screening: the queue names no account.
    assert "applicant-older" not in page and "applicant-newer" not in page


def test_the_queue_filters_by_status(world):
    waiting = submitted(world.group, make_person("applicant-one"))
    declined = submitted(world.group, make_person("applicant-two"))
    services.application_decline(
        application=declined, actor=world.facilitator.user, revision=fresh(declined).revision
    )
    client = sign_in_verified(world.facilitator.user)

    default = html(client.get(queue_url(world.group)))
    only_declined = html(client.get(queue_url(world.group, S.DECLINED)))
    everything = html(client.get(queue_url(world.group, "")))
    nonsense = html(client.get(queue_url(world.group, "<script>")))

    assert f"Application #{waiting.pk}<" in default
    assert f"Application #{declined.pk}<" not in default
    assert f"Application #{declined.pk}<" in only_declined
    assert f"Application #{waiting.pk}<" not in only_declined
    assert f"Application #{waiting.pk}<" in everything
    assert f"Application #{declined.pk}<" in everything
    assert f"Application #{waiting.pk}<" in nonsense  # falls back to "sent"
    assert "<script>" not in nonsense


# --- the application page ---------------------------------------------------------------------


def test_every_look_at_the_answers_is_audited(world):
    application = submitted(world.group, world.applicant)
    client = sign_in_verified(world.facilitator.user)
    co_client = sign_in_verified(world.co_facilitator.user)

    first = client.get(review_url(application))
    client.get(review_url(application))
    co_client.get(review_url(application))

    assert first.status_code == 200
    for question, answer in zip(
        questions_of(application), valid_answers(questions_of(application)).values(), strict=True
    ):
        assert question.text in html(first)
        if question.kind in ("long_text", "short_text"):
            assert answer in html(first)
    looks = events(Action.APPLICATION_ANSWERS_VIEWED)
    assert len(looks) == 3
    assert [e.actor_id for e in looks] == [
        world.facilitator.user.pk,
        world.facilitator.user.pk,
        world.co_facilitator.user.pk,
    ]
    assert all(e.subject_id == world.applicant.pk for e in looks)
    assert all(e.target_id == str(application.pk) for e in looks)
    assert all(e.group_id == world.group.pk for e in looks)
    # The applicant is told, in plain words, under "who has seen my data".
    activity = html(signed_in_applicant(world.applicant).get("/account/activity/"))
    assert "read your application answers" in activity


def test_a_draft_is_not_open_to_the_facilitators(world):
    draft = start(world.group, world.applicant)
    client = sign_in_verified(world.facilitator.user)

    assert client.get(review_url(draft)).status_code == 404
    assert not events(Action.APPLICATION_ANSWERS_VIEWED)


def test_facilitators_share_private_notes(world):
    application = submitted(world.group, world.applicant)
    client = sign_in_verified(world.facilitator.user)
    co_client = sign_in_verified(world.co_facilitator.user)

    response = decide(client, application, "note", body="Seems a good fit; check timing.")
    decide(co_client, application, "note", body="Agree. Offered Tuesday.")

    assert "Note added." in html(response)
    page = html(client.get(review_url(application)))
    assert "Seems a good fit; check timing." in page
    assert "Agree. Offered Tuesday." in page
    assert "Lantern" in page and "Beacon" in page  # authors by pseudonym
    assert page.index("Seems a good fit") < page.index("Agree. Offered")
    added = events(Action.REVIEWER_NOTE_ADDED)
    assert [e.actor_id for e in added] == [world.facilitator.user.pk, world.co_facilitator.user.pk]
    assert all("fit" not in str(e.extra) for e in added)
    # A note is not a decision: the status and revision stay.
    assert fresh(application).status == S.SUBMITTED
    assert fresh(application).revision == application.revision


def test_an_empty_note_is_refused(world):
    application = submitted(world.group, world.applicant)
    client = sign_in_verified(world.facilitator.user)

    response = decide(client, application, "note", body="   ")

    assert "This field is required." in html(response)
    assert not ReviewerNote.objects.exists()


def test_an_unknown_action_changes_nothing(world):
    application = submitted(world.group, world.applicant)
    client = sign_in_verified(world.facilitator.user)

    response = client.post(
        review_url(application), {"action": "delete", "revision": application.revision}, follow=True
    )

    assert "Unknown action." in html(response)
    assert fresh(application).status == S.SUBMITTED


# --- asking for more --------------------------------------------------------------------------


def test_the_facilitators_ask_and_the_applicant_answers_inside_the_application(world):
    application = submitted(world.group, world.applicant)
    client = sign_in_verified(world.facilitator.user)
    applicant = signed_in_applicant(world.applicant)

    response = decide(
        client, application, "request_info", question="Which evenings could you make?"
    )

    assert "Your question is sent to the applicant." in html(response)
    assert fresh(application).status == S.INFO_REQUESTED
    page = html(applicant.get(f"/screening/mine/{application.pk}/"))
    assert "Which evenings could you make?" in page
    assert "The facilitators asked you something" in page

    answered = applicant.post(
        f"/screening/mine/{application.pk}/answer/",
        {"response": "  Tuesdays are best.  "},
        follow=True,
    )

    assert "Your answer is sent to the facilitators." in html(answered)
    assert "Tuesdays are best." in html(answered)
    application = fresh(application)
    assert application.status == S.SUBMITTED
    assert application.info_response == "Tuesdays are best."
    review = html(client.get(review_url(application)))
    assert "Which evenings could you make?" in review
    assert "Tuesdays are best." in review
    (asked,) = events(Action.APPLICATION_INFO_REQUESTED)
    assert (asked.actor_id, asked.subject_id) == (world.facilitator.user.pk, world.applicant.pk)
    assert asked.extra == {"from": "submitted", "to": "info_requested"}
    (provided,) = events(Action.APPLICATION_INFO_PROVIDED)
    assert (provided.actor_id, provided.subject_id) == (world.applicant.pk, world.applicant.pk)
    assert provided.extra == {"from": "info_requested", "to": "submitted"}
    assert "Tuesdays" not in str(provided.extra) and "evenings" not in str(asked.extra)


def test_an_empty_or_oversized_answer_to_the_facilitators_is_explained(world):
    application = submitted(world.group, world.applicant)
    services.application_request_info(
        application=application,
        actor=world.facilitator.user,
        question="Anything else?",
        revision=fresh(application).revision,
    )
    applicant = signed_in_applicant(world.applicant)
    url = f"/screening/mine/{application.pk}/answer/"

    empty = applicant.post(url, {"response": ""})
    too_long = applicant.post(url, {"response": "y" * 4001})

    assert "This field is required." in html(empty)
    assert "at most 4000 characters" in html(too_long)
    assert "y" * 4001 in html(too_long)  # what they typed is still there
    assert fresh(application).status == S.INFO_REQUESTED
    assert fresh(application).info_response is None


def test_asking_needs_a_question(world):
    application = submitted(world.group, world.applicant)
    client = sign_in_verified(world.facilitator.user)

    response = decide(client, application, "request_info", question="")

    page = html(response)
    assert "Write the question to send to the applicant." in page
    # The section with the error is open (the others stay folded), so the message shows.
    opened = re.findall(r"<details open><summary>([^<]+)</summary>", page)
    assert opened == ["Ask the applicant something"]
    assert fresh(application).status == S.SUBMITTED


# --- approving --------------------------------------------------------------------------------


def test_approving_gives_a_place_to_take(world):
    application = submitted(world.group, world.applicant)
    client = sign_in_verified(world.facilitator.user)

    response = decide(client, application, "approve", message="Welcome! See you Tuesday.")

    assert "Approved." in html(response)
    application = fresh(application)
    assert application.status == S.APPROVED
    assert application.decided_at is not None
    membership = Membership.objects.get(group=world.group, user=world.applicant)
    assert membership.status == Status.PENDING_AGREEMENT
    (decided,) = events(Action.APPLICATION_DECIDED)
    assert decided.extra == {"from": "submitted", "to": "approved", "decision": "approved"}
    assert (decided.actor_id, decided.subject_id) == (world.facilitator.user.pk, world.applicant.pk)
    created = events(Action.MEMBERSHIP_CREATED, subject=world.applicant)
    assert created[-1].extra == {"via": "screening"}
    # The applicant reads the message and is offered the next step.
    applicant = signed_in_applicant(world.applicant)
    page = html(applicant.get(f"/screening/mine/{application.pk}/"))
    assert "Welcome! See you Tuesday." in page
    assert f"/groups/{world.group.slug}/join/" in page
    joined = applicant.post(
        f"/groups/{world.group.slug}/join/",
        {"pseudonym": "Kestrel", "typed_name": "Kestrel", "guidelines_acknowledged": "on"},
    )
    assert joined.status_code == 302
    membership.refresh_from_db()
    assert (membership.status, membership.pseudonym) == (Status.ACTIVE, "Kestrel")
    assert "Kestrel" in html(applicant.get("/groups/mine/"))
    # Once in, the application pages lead to the group, no longer to a step already taken.
    for path in (f"/screening/mine/{application.pk}/", "/screening/mine/"):
        page = html(applicant.get(path))
        assert f"/groups/{world.group.slug}/join/" not in page
        assert f"/groups/{world.group.slug}/home/" in page


def test_approving_someone_who_joined_meanwhile_is_a_clear_refusal(world):
    application = submitted(world.group, world.applicant)
    invitation, token = group_services.invitation_create(
        group=world.group, actor=world.facilitator.user
    )
    group_services.invitation_accept(token=token, user=world.applicant)
    client = sign_in_verified(world.facilitator.user)

    response = decide(client, application, "approve")

    assert response.status_code == 200
    assert "already" in html(response)
    assert fresh(application).status == S.SUBMITTED


# --- declining and the cool-down ---------------------------------------------------------------


def test_declining_tells_the_applicant_the_message_but_keeps_the_reason_internal(world):
    application = submitted(world.group, world.applicant)
    client = sign_in_verified(world.facilitator.user)

    response = decide(
        client,
        application,
        "decline",
        message="This group may not be the right fit right now.",
        internal_reason="Currently in acute crisis; referred to the crisis team.",
    )

    assert "Declined." in html(response)
    application = fresh(application)
    assert application.status == S.DECLINED
    assert application.message_to_applicant == "This group may not be the right fit right now."
    (note,) = ReviewerNote.objects.filter(application=application)
    assert "referred to the crisis team" in note.body
    assert note.author == world.facilitator
    assert "referred to the crisis team" in html(response)  # the facilitators see it
    (decided,) = events(Action.APPLICATION_DECIDED)
    assert decided.extra == {"from": "submitted", "to": "declined", "decision": "declined"}
    assert "crisis" not in str(decided.extra)
    applicant_page = html(
        signed_in_applicant(world.applicant).get(f"/screening/mine/{application.pk}/")
    )
    assert "This group may not be the right fit right now." in applicant_page
    assert "crisis team" not in applicant_page
    assert "Not offered a place" in applicant_page


def test_after_a_decline_they_may_apply_again_only_after_the_cool_down(world):
    world.group.reapply_cooldown_days = 30
    world.group.save(update_fields=["reapply_cooldown_days"])
    application = submitted(world.group, world.applicant)
    services.application_decline(
        application=application, actor=world.facilitator.user, revision=fresh(application).revision
    )
    decided_at = fresh(application).decided_at
    allowed_from = timezone.localtime(decided_at + timedelta(days=30))
    date = f"{allowed_from.day} {allowed_from:%B %Y}"

    with pytest.raises(services.ScreeningError) as refused:
        start(world.group, world.applicant)
    assert str(refused.value) == f"You can apply to this group again from {date}."

    # Through the page: the same clear message, and what they typed is kept.
    client = signed_in_applicant(world.applicant)
    questions = questions_of(services.questionnaire_ensure(group=world.group))
    answers = valid_answers(questions)
    response = client.post(
        f"/screening/apply/{world.group.slug}/", {**form_data(answers), "submit": "1"}
    )
    assert response.status_code == 200
    assert f"You can apply to this group again from {date}." in html(response)
    # The page says so before any question is shown, so nothing typed can be lost.
    assert "My answer to question 2." not in html(response)
    assert (
        client.get(f"/screening/apply/{world.group.slug}/")
        .content.decode()
        .count("You can apply to this group again from")
        == 1
    )
    assert Application.objects.filter(applicant=world.applicant).count() == 1

    # A day before the end of the cool-down: still refused.
    Application.objects.filter(pk=application.pk).update(
        decided_at=timezone.now() - timedelta(days=29)
    )
    with pytest.raises(services.ScreeningError, match="You can apply to this group again from"):
        start(world.group, world.applicant)

    # Once it has passed, a new application starts.
    Application.objects.filter(pk=application.pk).update(
        decided_at=timezone.now() - timedelta(days=30, minutes=1)
    )
    response = client.post(
        f"/screening/apply/{world.group.slug}/", {**form_data(answers), "submit": "1"}
    )
    assert response.status_code == 302
    assert Application.objects.filter(applicant=world.applicant, status=S.SUBMITTED).count() == 1


def test_withdrawing_is_no_reason_for_a_cool_down(world):
    application = submitted(world.group, world.applicant)
    services.application_withdraw(application=application)

    again = start(world.group, world.applicant)

    assert again != application
    assert again.status == S.DRAFT


# --- a full group: the waiting list, in order ---------------------------------------------------


@pytest.fixture
def full_group(world):
    """Room for one member, and Quiet Fox has it (facilitators don't take places)."""
    world.group.capacity = 1
    world.group.save(update_fields=["capacity"])
    return world.group


def test_approving_when_full_puts_people_on_the_waiting_list_and_offers_places_in_order(
    world, full_group
):
    first = submitted(full_group, make_person("applicant-first"))
    second = submitted(full_group, make_person("applicant-second"))
    client = sign_in_verified(world.facilitator.user)

    for application in (first, second):
        response = decide(client, application, "approve", message="We'll be in touch.")
        assert "The group is full, so the applicant is on the waiting list." in html(response)
        assert fresh(application).status == S.WAITLISTED
        assert fresh(application).waitlisted_at is not None
    decided = events(Action.APPLICATION_DECIDED)
    assert [e.extra["decision"] for e in decided] == ["waitlisted", "waitlisted"]
    assert not Membership.objects.filter(user__username__startswith="applicant-").exists()
    # The waiting list, in order, for the facilitators.
    waitlist = html(client.get(queue_url(full_group, S.WAITLISTED)))
    assert waitlist.index(f"Application #{first.pk}<") < waitlist.index(
        f"Application #{second.pk}<"
    )
    # Still full: nobody on the list can be offered a place yet.
    response = decide(client, first, "approve")
    assert "The group is full: a place must free up first." in html(response)
    assert fresh(first).status == S.WAITLISTED

    group_services.membership_leave(
        actor=world.member.user, group=world.member.group
    )  # a place frees up

    # The later applicant can't jump the queue...
    response = decide(client, second, "approve")
    assert "Offer places in waiting-list order: someone has waited longer." in html(response)
    assert fresh(second).status == S.WAITLISTED
    # ...the earlier one gets the place...
    response = decide(client, first, "approve")
    assert "Approved." in html(response)
    assert fresh(first).status == S.APPROVED
    assert Membership.objects.get(user=first.applicant).status == Status.PENDING_AGREEMENT
    # ...and the next one waits for the next place (an approved place counts at once).
    response = decide(client, second, "approve")
    assert "The group is full: a place must free up first." in html(response)
    full_group.capacity = 2
    full_group.save(update_fields=["capacity"])
    response = decide(client, second, "approve")
    assert fresh(second).status == S.APPROVED
    assert [e.extra for e in events(Action.APPLICATION_DECIDED)][-2:] == [
        {"from": "waitlisted", "to": "approved", "decision": "approved"},
        {"from": "waitlisted", "to": "approved", "decision": "approved"},
    ]


def test_a_new_applicant_does_not_take_a_free_place_ahead_of_the_waiting_list(world, full_group):
    waiting = submitted(full_group, make_person("applicant-waiting"))
    services.application_approve(
        application=waiting, actor=world.facilitator.user, revision=fresh(waiting).revision
    )
    assert fresh(waiting).status == S.WAITLISTED
    group_services.membership_leave(actor=world.member.user, group=world.member.group)
    newcomer = submitted(full_group, make_person("applicant-newcomer"))

    result = services.application_approve(
        application=newcomer, actor=world.facilitator.user, revision=fresh(newcomer).revision
    )

    assert result.status == S.WAITLISTED
    assert not Membership.objects.filter(user=newcomer.applicant).exists()
    approved = services.application_approve(
        application=waiting, actor=world.facilitator.user, revision=fresh(waiting).revision
    )
    assert approved.status == S.APPROVED


def test_the_facilitators_may_put_someone_on_the_waiting_list_directly(world):
    application = submitted(world.group, world.applicant)
    client = sign_in_verified(world.facilitator.user)

    response = decide(client, application, "waitlist", message="We start a new circle in May.")

    assert "The applicant is on the waiting list." in html(response)
    application = fresh(application)
    assert application.status == S.WAITLISTED
    assert application.message_to_applicant == "We start a new circle in May."
    page = html(signed_in_applicant(world.applicant).get(f"/screening/mine/{application.pk}/"))
    assert "On the waiting list" in page
    assert "We start a new circle in May." in page
    # With room in the group, approving from the list is one step.
    response = decide(client, application, "approve")
    assert fresh(application).status == S.APPROVED


def test_a_page_shown_after_a_refused_form_is_a_look_too(world):
    """The answers are on every review page, including the one shown again after a
    refused form: reading them must never leave no trace (e.g. a crafted POST)."""
    application = submitted(world.group, world.applicant)
    client = sign_in_verified(world.facilitator.user)

    invalid = client.post(review_url(application), {"action": "note", "body": ""})
    stale = client.post(
        review_url(application), {"action": "decline", "revision": application.revision - 1}
    )

    for response in (invalid, stale):
        assert response.status_code == 200
        assert "My answer to question 2." in html(response)
    looks = events(Action.APPLICATION_ANSWERS_VIEWED)
    assert len(looks) == 2
    assert all(e.subject_id == world.applicant.pk for e in looks)
    assert all(e.actor_id == world.facilitator.user.pk for e in looks)


def test_the_review_pages_forms_have_distinct_ids(world):
    """Five forms share field names (revision, message): each label must point at the
    field of its own form, or screen readers name the wrong one."""
    application = submitted(world.group, world.applicant)
    client = sign_in_verified(world.facilitator.user)

    pages = [
        html(client.get(review_url(application))),
        html(client.post(review_url(application), {"action": "decline", "revision": "x"})),
    ]

    for page in pages:
        ids = re.findall(r'\sid="([^"]+)"', page)
        assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
        for target in re.findall(r'<label for="([^"]+)"', page):
            assert target in ids, target
