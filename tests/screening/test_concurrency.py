"""Two facilitators deciding at once: a decision made on one page is never overwritten by
another facilitator's stale page; the second gets a clear message. Also with real
concurrent transactions (threads, each with its own database connection)."""

import threading

import pytest
from django.db import close_old_connections, connection, transaction

from audit.events import Action
from groups.models import Membership
from screening import services
from screening.models import Application, ApplicationStatus, Questionnaire, ReviewerNote
from tests.screening.conftest import (
    events,
    html,
    make_person,
    page_forms,
    review_url,
    sign_in_verified,
    submitted,
)

S = ApplicationStatus
CONFLICT = "Another facilitator changed this application"


def review_forms(client, application) -> dict:
    response = client.get(review_url(application))
    return {form["action"]: form for form in page_forms(response) if "action" in form}


# --- two pages open at once ---------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("second_action", "fields"),
    [
        ("decline", {"message": "Sorry.", "internal_reason": "Not a fit, says Beacon."}),
        ("request_info", {"question": "One more thing?"}),
        ("waitlist", {"message": "Please wait."}),
        ("approve", {"message": "Welcome twice?"}),
    ],
)
def test_a_stale_page_does_not_overwrite_the_first_decision(world, second_action, fields):
    application = submitted(world.group, world.applicant)
    lantern = sign_in_verified(world.facilitator.user)
    beacon = sign_in_verified(world.co_facilitator.user)
    lantern_forms = review_forms(lantern, application)
    beacon_forms = review_forms(beacon, application)
    assert lantern_forms["approve"]["revision"] == beacon_forms[second_action]["revision"]

    first = lantern.post(
        review_url(application), {**lantern_forms["approve"], "message": "Welcome!"}, follow=True
    )
    second = beacon.post(review_url(application), {**beacon_forms[second_action], **fields})

    assert "Approved." in html(first)
    assert second.status_code == 200
    page = html(second)
    assert CONFLICT in page
    # Beacon now sees the application as it stands.
    assert "Approved" in page
    application = Application.objects.get(pk=application.pk)
    assert application.status == S.APPROVED
    assert application.message_to_applicant == "Welcome!"
    assert application.info_request is None
    assert not ReviewerNote.objects.exists()
    (decided,) = events(Action.APPLICATION_DECIDED)
    assert decided.actor_id == world.facilitator.user.pk
    assert Membership.objects.filter(user=world.applicant).count() == 1


@pytest.mark.django_db
def test_notes_from_a_stale_page_are_still_added(world):
    application = submitted(world.group, world.applicant)
    lantern = sign_in_verified(world.facilitator.user)
    beacon = sign_in_verified(world.co_facilitator.user)
    beacon_forms = review_forms(beacon, application)
    lantern.post(review_url(application), {**review_forms(lantern, application)["decline"]})

    response = beacon.post(
        review_url(application),
        {**beacon_forms["note"], "body": "Written before I saw the decision."},
        follow=True,
    )

    assert "Note added." in html(response)
    assert "Written before I saw the decision." in html(response)


@pytest.mark.django_db
def test_a_stale_revision_is_refused_by_the_service(world):
    application = submitted(world.group, world.applicant)
    revision = Application.objects.get(pk=application.pk).revision
    services.application_waitlist(
        application=application, actor=world.facilitator.user, revision=revision
    )

    with pytest.raises(services.StaleDecision, match=CONFLICT):
        services.application_decline(
            application=application, actor=world.co_facilitator.user, revision=revision
        )

    assert Application.objects.get(pk=application.pk).status == S.WAITLISTED


# --- real concurrency ------------------------------------------------------------------------


def run_at_once(*calls, timeout=30):
    """Runs each call in its own thread (own database connection), released together.
    Returns each call's result or the exception it raised, in order."""
    barrier = threading.Barrier(len(calls))
    outcomes = [None] * len(calls)

    def runner(index, call):
        try:
            barrier.wait(timeout=timeout)
            outcomes[index] = call()
        except Exception as error:
            outcomes[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=runner, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
        assert not thread.is_alive(), "a thread is stuck (deadlock?)"
    close_old_connections()
    return outcomes


@pytest.mark.django_db(transaction=True)
def test_two_decisions_at_the_same_moment_one_wins_and_the_other_is_told(world):
    for round_ in range(3):
        applicant = make_person(f"applicant-race-{round_}")
        application = submitted(world.group, applicant)
        revision = Application.objects.get(pk=application.pk).revision

        outcomes = run_at_once(
            lambda app=application, rev=revision: services.application_approve(
                application=app, actor=world.facilitator.user, revision=rev
            ),
            lambda app=application, rev=revision: services.application_decline(
                application=app,
                actor=world.co_facilitator.user,
                revision=rev,
                internal_reason="Declined in a race.",
            ),
        )

        winners = [o for o in outcomes if isinstance(o, Application)]
        losers = [o for o in outcomes if isinstance(o, Exception)]
        assert len(winners) == 1 and len(losers) == 1, outcomes
        assert isinstance(losers[0], services.StaleDecision), repr(losers[0])
        assert CONFLICT in str(losers[0])
        final = Application.objects.get(pk=application.pk)
        assert final.status == winners[0].status
        assert final.revision == revision + 1
        decided = events(Action.APPLICATION_DECIDED, target_id=str(application.pk))
        assert len(decided) == 1
        assert decided[0].extra["decision"] == final.status
        # The loser left nothing behind: no place, no note.
        places = Membership.objects.filter(user=applicant).count()
        assert places == (1 if final.status == S.APPROVED else 0)
        notes = ReviewerNote.objects.filter(application=application).count()
        assert notes == (1 if final.status == S.DECLINED else 0)


@pytest.mark.django_db(transaction=True)
def test_the_second_decision_waits_for_the_first_and_then_sees_it(world):
    """The first decision holds its transaction open; the second, started meanwhile with
    the same revision, must wait for it and then be refused (not read the old row)."""
    application = submitted(world.group, world.applicant)
    revision = Application.objects.get(pk=application.pk).revision
    first_decided = threading.Event()
    release_first = threading.Event()
    second_done = threading.Event()

    def first():
        with transaction.atomic():
            result = services.application_approve(
                application=application, actor=world.facilitator.user, revision=revision
            )
            first_decided.set()
            assert release_first.wait(timeout=30)
        return result

    def second():
        assert first_decided.wait(timeout=30)
        try:
            return services.application_waitlist(
                application=application, actor=world.co_facilitator.user, revision=revision
            )
        finally:
            second_done.set()

    def referee():
        assert first_decided.wait(timeout=30)
        # The second decision is blocked on the first one's lock, not finished.
        finished_early = second_done.wait(timeout=1.0)
        release_first.set()
        return finished_early

    outcomes = run_at_once(first, second, referee)

    assert isinstance(outcomes[0], Application), repr(outcomes[0])
    assert isinstance(outcomes[1], services.StaleDecision), repr(outcomes[1])
    assert outcomes[2] is False, "the second decision did not wait for the first"
    assert Application.objects.get(pk=application.pk).status == S.APPROVED


@pytest.mark.django_db(transaction=True)
def test_two_approvals_for_the_last_place_give_it_to_one(world):
    world.group.capacity = 2  # Quiet Fox has one place; one is left
    world.group.save(update_fields=["capacity"])
    a = submitted(world.group, make_person("applicant-a"))
    b = submitted(world.group, make_person("applicant-b"))

    outcomes = run_at_once(
        lambda: services.application_approve(
            application=a, actor=world.facilitator.user, revision=a.revision
        ),
        lambda: services.application_approve(
            application=b, actor=world.co_facilitator.user, revision=b.revision
        ),
    )

    assert all(isinstance(o, Application) for o in outcomes), outcomes
    statuses = sorted(Application.objects.filter(pk__in=[a.pk, b.pk]).values_list("status"))
    assert statuses == [(S.APPROVED,), (S.WAITLISTED,)]
    assert Membership.objects.filter(group=world.group, role="member").count() == 2


@pytest.mark.django_db(transaction=True)
def test_two_tabs_starting_an_application_make_one(world):
    services.questionnaire_ensure(group=world.group)

    outcomes = run_at_once(
        *[
            lambda: services.application_start(group=world.group, applicant=world.applicant)
            for _ in range(3)
        ]
    )

    assert all(isinstance(o, Application) for o in outcomes), outcomes
    assert len({o.pk for o in outcomes}) == 1
    assert Application.objects.filter(applicant=world.applicant).count() == 1
    assert len(events(Action.APPLICATION_STARTED)) == 1


@pytest.mark.django_db(transaction=True)
def test_two_facilitators_publishing_at_once_get_consecutive_versions(world):
    services.questionnaire_ensure(group=world.group)
    question = {"kind": "short_text", "text": "Anything else?"}

    outcomes = run_at_once(
        lambda: services.questionnaire_publish(
            group=world.group, actor=world.facilitator.user, questions=[question]
        ),
        lambda: services.questionnaire_publish(
            group=world.group, actor=world.co_facilitator.user, questions=[question]
        ),
    )

    assert all(isinstance(o, Questionnaire) for o in outcomes), outcomes
    assert sorted(o.version for o in outcomes) == [2, 3]
