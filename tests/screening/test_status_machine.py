"""The status machine, enforced by the services: every allowed transition is audited and
bumps the revision; every other one is refused with a message for a person, and changes
nothing. The pages pass those messages on."""

import pytest

from audit.events import Action
from audit.models import Event
from screening import services
from screening.models import ApplicationStatus
from tests.screening.conftest import (
    fresh,
    html,
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


def in_state(world, state):
    """An application of world.applicant brought to ``state`` through the services."""
    application = start(world.group, world.applicant)
    if state == S.DRAFT:
        return application
    application = submitted(world.group, world.applicant)
    revision = fresh(application).revision
    actor = world.facilitator.user
    if state == S.INFO_REQUESTED:
        services.application_request_info(
            application=application, actor=actor, question="Why?", revision=revision
        )
    elif state == S.APPROVED:
        services.application_approve(application=application, actor=actor, revision=revision)
    elif state == S.DECLINED:
        services.application_decline(application=application, actor=actor, revision=revision)
    elif state == S.WAITLISTED:
        services.application_waitlist(application=application, actor=actor, revision=revision)
    elif state == S.WITHDRAWN:
        services.application_withdraw(application=application)
    application = fresh(application)
    assert application.status == state
    return application


def submit(world, application):
    answers = valid_answers(questions_of(application))
    return services.application_save(application=application, answers=answers, submit=True)


def request_info(world, application):
    return services.application_request_info(
        application=application,
        actor=world.facilitator.user,
        question="Could you tell us more?",
        revision=application.revision,
    )


def provide_info(world, application):
    return services.application_provide_info(application=application, response="Here is more.")


def approve(world, application):
    return services.application_approve(
        application=application, actor=world.facilitator.user, revision=application.revision
    )


def waitlist(world, application):
    return services.application_waitlist(
        application=application, actor=world.facilitator.user, revision=application.revision
    )


def decline(world, application):
    return services.application_decline(
        application=application, actor=world.facilitator.user, revision=application.revision
    )


def withdraw(world, application):
    return services.application_withdraw(application=application)


# operation: (what it does, {state it may start from: (state it ends in, audit action)})
MACHINE = {
    submit: {S.DRAFT: (S.SUBMITTED, Action.APPLICATION_SUBMITTED)},
    request_info: {S.SUBMITTED: (S.INFO_REQUESTED, Action.APPLICATION_INFO_REQUESTED)},
    provide_info: {S.INFO_REQUESTED: (S.SUBMITTED, Action.APPLICATION_INFO_PROVIDED)},
    approve: {
        S.SUBMITTED: (S.APPROVED, Action.APPLICATION_DECIDED),
        S.WAITLISTED: (S.APPROVED, Action.APPLICATION_DECIDED),
    },
    waitlist: {S.SUBMITTED: (S.WAITLISTED, Action.APPLICATION_DECIDED)},
    decline: {
        S.SUBMITTED: (S.DECLINED, Action.APPLICATION_DECIDED),
        S.INFO_REQUESTED: (S.DECLINED, Action.APPLICATION_DECIDED),
        S.WAITLISTED: (S.DECLINED, Action.APPLICATION_DECIDED),
    },
    withdraw: {
        S.DRAFT: (S.WITHDRAWN, Action.APPLICATION_WITHDRAWN),
        S.SUBMITTED: (S.WITHDRAWN, Action.APPLICATION_WITHDRAWN),
        S.INFO_REQUESTED: (S.WITHDRAWN, Action.APPLICATION_WITHDRAWN),
        S.WAITLISTED: (S.WITHDRAWN, Action.APPLICATION_WITHDRAWN),
    },
}

ALLOWED = [
    pytest.param(operation, start_state, end, action, id=f"{operation.__name__}-{start_state}")
    for operation, moves in MACHINE.items()
    for start_state, (end, action) in moves.items()
]
REFUSED = [
    pytest.param(operation, state, id=f"{operation.__name__}-{state}")
    for operation, moves in MACHINE.items()
    for state in S.values
    if state not in moves
]


@pytest.mark.parametrize(("operation", "start_state", "end", "action"), ALLOWED)
def test_an_allowed_transition_is_made_and_audited(world, operation, start_state, end, action):
    application = in_state(world, start_state)
    last_seq = Event.objects.order_by("-seq").values_list("seq", flat=True).first()

    operation(world, application)

    after = fresh(application)
    assert after.status == end
    assert after.revision == application.revision + 1
    assert after.updated_at > application.updated_at
    new_events = list(Event.objects.filter(seq__gt=last_seq, action=int(action)))
    assert len(new_events) == 1
    (event,) = new_events
    assert event.subject_id == world.applicant.pk
    assert event.target_id == str(application.pk)
    assert event.group_id == world.group.pk
    assert event.extra["from"] == start_state
    assert event.extra["to"] == end
    if action == Action.APPLICATION_DECIDED:
        assert event.extra["decision"] == end
        assert event.actor_id == world.facilitator.user.pk
    if operation in (submit, provide_info, withdraw):
        assert event.actor_id == world.applicant.pk
    if end in (S.APPROVED, S.DECLINED, S.WITHDRAWN):
        assert after.decided_at is not None


@pytest.mark.parametrize(("operation", "state"), REFUSED)
def test_any_other_transition_is_refused_with_a_clear_message(world, operation, state):
    application = in_state(world, state)
    events_before = Event.objects.count()

    with pytest.raises(services.ScreeningError) as refused:
        operation(world, application)

    message = str(refused.value)
    assert message.endswith(".")
    assert "Traceback" not in message and "status" not in message
    after = fresh(application)
    assert (after.status, after.revision, after.answers) == (
        state,
        application.revision,
        application.answers,
    )
    assert Event.objects.count() == events_before


def test_the_refusals_say_what_the_application_is(world):
    withdrawn = in_state(world, S.WITHDRAWN)

    with pytest.raises(services.ScreeningError) as refused:
        approve(world, withdrawn)

    assert str(refused.value) == "This application is “Withdrawn”, so that can't be done now."


# --- through the pages -------------------------------------------------------------------------


def test_approving_a_withdrawn_application_is_refused_on_the_page(world):
    application = submitted(world.group, world.applicant)
    client = sign_in_verified(world.facilitator.user)
    page = client.get(review_url(application))
    (approve_form,) = [f for f in page_forms(page) if f.get("action") == "approve"]
    services.application_withdraw(application=application)
    # Even with the current revision (not a stale page), the machine says no.
    approve_form["revision"] = str(fresh(application).revision)

    response = client.post(review_url(application), approve_form)

    assert response.status_code == 200
    assert "This application is “Withdrawn”, so that can&#x27;t be done now." in html(response)
    assert fresh(application).status == S.WITHDRAWN
    # A decided application offers no more decisions.
    assert 'value="approve"' not in html(response)


def test_withdrawing_asks_first_and_only_the_confirmation_withdraws(world):
    application = in_state(world, S.SUBMITTED)
    client = signed_in_applicant(world.applicant)
    url = f"/screening/mine/{application.pk}/withdraw/"
    assert url in html(client.get(f"/screening/mine/{application.pk}/"))

    asked = client.get(url)

    assert asked.status_code == 200
    assert "cannot be taken back" in html(asked)
    assert fresh(application).status == S.SUBMITTED
    done = client.post(url, follow=True)
    assert "Your application is withdrawn." in html(done)
    assert fresh(application).status == S.WITHDRAWN
    # Asked again once withdrawn, the page says where it stands instead.
    assert client.get(url)["Location"] == f"/screening/mine/{application.pk}/"


def test_withdrawing_an_approved_application_is_refused_on_the_page(world):
    application = in_state(world, S.APPROVED)
    client = signed_in_applicant(world.applicant)

    response = client.post(f"/screening/mine/{application.pk}/withdraw/", follow=True)

    assert "This application can&#x27;t be withdrawn now." in html(response)
    assert fresh(application).status == S.APPROVED
    # The page offers no withdraw button for it either.
    page = html(client.get(f"/screening/mine/{application.pk}/"))
    assert "Withdraw my application" not in page


def test_providing_information_nobody_asked_for_is_refused_on_the_page(world):
    application = in_state(world, S.SUBMITTED)
    client = signed_in_applicant(world.applicant)

    response = client.post(
        f"/screening/mine/{application.pk}/answer/", {"response": "Unprompted details."}
    )

    assert response.status_code == 200
    assert "Nothing was asked on this application." in html(response)
    assert fresh(application).info_response is None


def test_the_applicant_withdraws_from_their_page(world):
    application = in_state(world, S.INFO_REQUESTED)
    client = signed_in_applicant(world.applicant)
    assert "Withdraw my application" in html(client.get(f"/screening/mine/{application.pk}/"))

    response = client.post(f"/screening/mine/{application.pk}/withdraw/", follow=True)

    assert "Your application is withdrawn." in html(response)
    assert "Withdrawn" in html(response)
    assert fresh(application).status == S.WITHDRAWN
    assert fresh(application).decided_at is not None


def test_the_applicant_sees_the_status_in_plain_language(world):
    client = signed_in_applicant(world.applicant)
    expectations = {
        S.SUBMITTED: "Sent — waiting for the facilitators",
        S.INFO_REQUESTED: "The facilitators asked you something",
        S.WAITLISTED: "On the waiting list",
        S.APPROVED: "Approved",
    }
    for state, words in expectations.items():
        application = in_state(world, state)
        assert words in html(client.get("/screening/mine/")), state
        assert words in html(client.get(f"/screening/mine/{application.pk}/")), state
        if state != S.APPROVED:
            services.application_withdraw(application=application)


def test_the_facilitators_see_the_status_in_their_own_words(world):
    client = sign_in_verified(world.facilitator.user)
    queue = html(client.get(f"/screening/review/{world.group.slug}/?status="))
    assert "Waiting for the applicant&#x27;s answer" in queue
    assert "asked you something" not in queue
    for state, words in {
        S.SUBMITTED: "Waiting for a decision",
        S.INFO_REQUESTED: "Waiting for the applicant&#x27;s answer",
        S.WAITLISTED: "On the waiting list",
    }.items():
        application = in_state(world, state)
        assert words in html(client.get(review_url(application))), state
        services.application_withdraw(application=application)
