"""Retention: the answers, notes and messages of declined and withdrawn applications are
deleted after SCREENING_RETENTION_DAYS by `manage.py purge_expired_applications`, which
is idempotent, prints and audits the count, and leaves everything else alone."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from audit.events import Action
from screening import services
from screening.models import Application, ApplicationStatus, ReviewerNote
from tests.screening.conftest import (
    events,
    fresh,
    html,
    make_person,
    review_url,
    sign_in_verified,
    signed_in_applicant,
    start,
    submitted,
)

pytestmark = pytest.mark.django_db

S = ApplicationStatus


def purge() -> str:
    out = StringIO()
    call_command("purge_expired_applications", stdout=out)
    return out.getvalue()


def decided_days_ago(application, days, hours=0):
    Application.objects.filter(pk=application.pk).update(
        decided_at=timezone.now() - timedelta(days=days, hours=hours)
    )


def raw_texts(application):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT answers::text, info_request, info_response, message_to_applicant "
            "FROM screening_application WHERE id = %s",
            [application.pk],
        )
        return cursor.fetchone()


def with_everything(world, handle, group=None):
    """A sent application with a note, a question and its answer."""
    group = group or world.group
    application = submitted(group, make_person(handle))
    services.note_add(
        application=application, actor=world.facilitator.user, body=f"Note on {handle}"
    )
    services.application_request_info(
        application=application,
        actor=world.facilitator.user,
        question="Anything else?",
        revision=fresh(application).revision,
    )
    services.application_provide_info(application=application, response="Nothing else.")
    return fresh(application)


def decline(world, application, message="Not this time."):
    return services.application_decline(
        application=application,
        actor=world.facilitator.user,
        revision=fresh(application).revision,
        message=message,
        internal_reason="Internal reason.",
    )


@pytest.fixture
def mix(world):
    """One application of each kind, decided (or not) long ago."""
    old_declined = decline(world, with_everything(world, "old-declined"))
    old_withdrawn = services.application_withdraw(
        application=with_everything(world, "old-withdrawn")
    )
    old_withdrawn_draft = services.application_withdraw(
        application=start(world.group, make_person("old-draft"))
    )
    recent_declined = decline(world, with_everything(world, "recent-declined"))
    old_approved = services.application_approve(
        application=(a := with_everything(world, "old-approved")),
        actor=world.facilitator.user,
        revision=fresh(a).revision,
    )
    waitlisted = services.application_waitlist(
        application=(w := with_everything(world, "waitlisted")),
        actor=world.facilitator.user,
        revision=fresh(w).revision,
    )
    still_open = with_everything(world, "still-open")
    for application in (old_declined, old_withdrawn, old_withdrawn_draft, old_approved):
        decided_days_ago(application, 91)
    decided_days_ago(recent_declined, 89)
    Application.objects.filter(pk__in=[waitlisted.pk, still_open.pk]).update(
        created_at=timezone.now() - timedelta(days=400),
        submitted_at=timezone.now() - timedelta(days=400),
        waitlisted_at=timezone.now() - timedelta(days=400),
    )
    return {
        "expired": [old_declined, old_withdrawn, old_withdrawn_draft],
        "kept": [recent_declined, old_approved, waitlisted, still_open],
    }


def test_it_purges_declined_and_withdrawn_applications_past_the_retention_period(world, mix):
    output = purge()

    assert output.strip() == "Purged 3 application(s) decided more than 90 days ago."
    for application in mix["expired"]:
        after = fresh(application)
        assert (after.answers, after.info_request, after.info_response) == (None, None, None)
        assert after.message_to_applicant is None
        assert after.purged_at is not None
        assert not ReviewerNote.objects.filter(application=application).exists()
        # Gone from the database itself, not just hidden.
        assert raw_texts(application) == (None, None, None, None)
        # The bare record stays, for the cool-down.
        assert after.status == application.status
        assert after.decided_at is not None
    for application in mix["kept"]:
        after = fresh(application)
        assert after.purged_at is None
        assert after.answers and after.answers == application.answers
        assert after.info_response == "Nothing else."
        assert ReviewerNote.objects.filter(application=application).exists()
    (event,) = events(Action.APPLICATIONS_PURGED)
    assert event.extra == {"applications": 3}
    assert event.actor_id is None


def test_purging_again_changes_nothing(world, mix):
    purge()
    purged_at = {a.pk: fresh(a).purged_at for a in mix["expired"]}

    output = purge()

    assert output.strip() == "Purged 0 application(s) decided more than 90 days ago."
    assert {a.pk: fresh(a).purged_at for a in mix["expired"]} == purged_at
    assert len(events(Action.APPLICATIONS_PURGED)) == 1


def test_the_retention_period_is_configurable(world, mix, settings):
    settings.SCREENING_RETENTION_DAYS = 7
    recent = decline(world, with_everything(world, "eight-days-ago"))
    decided_days_ago(recent, 8)
    fresh_decline = decline(world, with_everything(world, "six-days-ago"))
    decided_days_ago(fresh_decline, 6)

    output = purge()

    # The three expired ones, the one 89 days ago, and the one eight days ago.
    assert output.strip() == "Purged 5 application(s) decided more than 7 days ago."
    assert fresh(recent).purged_at is not None
    assert fresh(fresh_decline).purged_at is None
    assert fresh(mix["kept"][1]).purged_at is None  # approved: never purged


def test_the_pages_say_the_answers_were_deleted(world, mix):
    old_declined = mix["expired"][0]
    purge()

    applicant_page = html(
        signed_in_applicant(old_declined.applicant).get(f"/screening/mine/{old_declined.pk}/")
    )
    review_page = html(sign_in_verified(world.facilitator.user).get(review_url(old_declined)))

    assert "Your answers were deleted on" in applicant_page
    assert "Not this time." not in applicant_page
    assert "Deleted under the retention policy." in review_page
    assert "Note on old-declined" not in review_page
    assert "Internal reason." not in review_page


def test_a_purged_decline_still_counts_for_the_cool_down(world, settings):
    settings.SCREENING_RETENTION_DAYS = 1
    world.group.reapply_cooldown_days = 30
    world.group.save(update_fields=["reapply_cooldown_days"])
    application = decline(world, submitted(world.group, world.applicant))
    decided_days_ago(application, 2)
    purge()
    assert fresh(application).purged_at is not None

    with pytest.raises(services.ScreeningError, match="You can apply to this group again from"):
        start(world.group, world.applicant)


def test_no_new_notes_are_kept_on_a_purged_application(world, mix):
    old_declined = mix["expired"][0]
    purge()
    client = sign_in_verified(world.facilitator.user)

    response = client.post(
        review_url(old_declined), {"action": "note", "body": "Added after the purge."}, follow=True
    )

    assert response.status_code == 200
    assert "Added after the purge." not in html(response)
    assert not ReviewerNote.objects.filter(application=old_declined).exists()
    with pytest.raises(services.ScreeningError):
        services.note_add(application=old_declined, actor=world.facilitator.user, body="Later.")
