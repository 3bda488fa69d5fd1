"""The service contract (issue 16, point 4): ``actor`` is the acting User; the service
finds their membership and re-checks their role from the database, whatever the page or
socket checked when it loaded; refusals are one error class with a stable code.

A facilitator demoted between loading a page and posting its form (or between joining a
room and sending a control frame) is refused by every group-scoped service."""

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import Event
from groups import services as group_services
from meetings import services as meeting_services
from meetings.models import Meeting
from moderation import room, services
from moderation.models import Announcement, ModerationAction, Report, SafetyFlag
from screening import services as screening_services
from screening.models import ApplicationStatus
from supportgroups.errors import ServiceError
from tests.moderation.conftest import fresh, make_person, submitted_application

pytestmark = pytest.mark.django_db


@pytest.fixture
def demoted(world):
    """Lantern, as the page saw them (a facilitator), after an admin made them a member."""
    group_services.facilitator_remove(membership=world.facilitator, actor=world.admin)
    return world.facilitator.user


def refused(call, error_class=ServiceError) -> ServiceError:  # noqa: ANN001
    before = Event.objects.count()
    with pytest.raises(error_class) as caught:
        call()
    assert Event.objects.count() == before  # nothing recorded
    return caught.value


def test_a_demoted_facilitator_is_refused_by_the_moderation_services(world, demoted):
    report = services.report_file(
        actor=world.river.user, message=world.fern_message, guideline_number=1
    )
    flag = services.safety_flag_raise(actor=world.river.user, group=world.group, about=None)
    calls = [
        lambda: services.action_take(
            membership=world.fern, actor=demoted, kind="warn", guideline_number=1
        ),
        lambda: services.message_hide(
            message=world.fern_message, actor=demoted, guideline_number=1
        ),
        lambda: services.report_resolve(report=report, actor=demoted, action="none"),
        lambda: services.safety_flag_handle(flag=flag, actor=demoted),
        lambda: services.contact_reveal(
            membership=world.fern, actor=demoted, reason="A legal duty to warn applies."
        ),
        lambda: services.announcement_pin(meeting=world.meeting, actor=demoted, text="Hi"),
    ]
    for call in calls:
        error = refused(call, services.ModerationError)
        assert error.code == "not_facilitator"
        assert error.message == "Only this group's facilitators can do that."
    assert not ModerationAction.objects.exists()
    assert not Announcement.objects.exists()
    assert fresh(report).status == Report.Status.OPEN
    assert fresh(flag).status == SafetyFlag.Status.OPEN


def test_a_demoted_facilitator_is_refused_by_the_room_controls(world, demoted):
    for call in (
        lambda: room.moderate_from_room(
            meeting_id=world.meeting.pk,
            actor=demoted,
            action="mute",
            seq=world.fern_message.seq,
            guideline_number=1,
            minutes=10,
            reason="",
        ),
        lambda: room.announce_from_room(meeting_id=world.meeting.pk, actor=demoted, text="Hi"),
        lambda: room.close_from_room(meeting_id=world.meeting.pk, actor=demoted),
    ):
        assert refused(call, room.ModerationError).code == "not_facilitator"
    assert fresh(world.meeting).closed_at is None


def test_a_demoted_facilitator_is_refused_by_the_meetings_services(world, demoted):
    starts = timezone.now() + timedelta(days=2)
    for call in (
        lambda: meeting_services.meeting_schedule(
            group=world.group,
            actor=demoted,
            title="Extra",
            starts_at=starts,
            ends_at=starts + timedelta(hours=1),
        ),
        lambda: meeting_services.meeting_open(meeting=world.meeting, actor=demoted),
        lambda: meeting_services.meeting_close(meeting=world.meeting, actor=demoted),
    ):
        assert refused(call, meeting_services.RoomError).code == "not_facilitator"
    assert Meeting.objects.filter(title="Extra").count() == 0
    assert fresh(world.meeting).closed_at is None


def test_a_facilitator_of_another_group_is_refused_by_the_meetings_services(world):
    other = world.other_facilitator.user
    error = refused(
        lambda: meeting_services.meeting_close(meeting=world.meeting, actor=other),
        meeting_services.RoomError,
    )
    assert error.code == "not_facilitator"


def test_a_demoted_facilitator_is_refused_by_the_group_management_services(world, demoted):
    for call in (
        lambda: group_services.group_update(group=world.group, actor=demoted, name="Renamed"),
        lambda: group_services.group_link_reset(group=world.group, actor=demoted),
        lambda: group_services.guidelines_replace(group=world.group, actor=demoted, rules=["x"]),
        lambda: group_services.agreement_publish(group=world.group, actor=demoted, text="New."),
        lambda: group_services.invitation_create(group=world.group, actor=demoted),
    ):
        assert refused(call, group_services.GroupError).code == "not_facilitator"
    # Admins only, whoever asks otherwise.
    for call in (
        lambda: group_services.facilitator_appoint(
            group=world.group, actor=world.river.user, user=world.fern.user
        ),
        lambda: group_services.facilitator_remove(
            membership=world.other_facilitator, actor=world.other_facilitator.user
        ),
    ):
        assert refused(call, group_services.GroupError).code == "not_admin"
    assert fresh(world.group).name != "Renamed"


def test_a_demoted_facilitator_is_refused_by_the_screening_services(world):
    application = submitted_application(world.group, make_person("heron-handle"))
    group_services.facilitator_remove(membership=world.facilitator, actor=world.admin)
    demoted = world.facilitator.user
    revision = application.revision
    for call in (
        lambda: screening_services.application_approve(
            application=application, actor=demoted, revision=revision
        ),
        lambda: screening_services.application_decline(
            application=application, actor=demoted, revision=revision
        ),
        lambda: screening_services.application_waitlist(
            application=application, actor=demoted, revision=revision
        ),
        lambda: screening_services.application_request_info(
            application=application, actor=demoted, question="Why?", revision=revision
        ),
        lambda: screening_services.note_add(application=application, actor=demoted, body="x"),
        lambda: screening_services.application_record_view(
            application=application, actor=demoted, ip=None
        ),
        lambda: screening_services.questionnaire_publish(
            group=world.group, actor=demoted, questions=[{"kind": "short_text", "text": "?"}]
        ),
    ):
        assert refused(call, screening_services.ScreeningError).code == "not_facilitator"
    assert fresh(application).status == ApplicationStatus.SUBMITTED
    assert not application.notes.exists()


def test_a_stale_decision_is_a_screening_error_with_its_own_code(world):
    application = submitted_application(world.group, make_person("heron-handle"))
    error = refused(
        lambda: screening_services.application_approve(
            application=application, actor=world.facilitator.user, revision=0
        ),
        screening_services.StaleDecision,
    )
    assert isinstance(error, screening_services.ScreeningError)
    assert error.code == "stale"
    assert "Another facilitator changed this application" in str(error)


def test_services_find_the_actors_membership_themselves(world):
    """The acting account, not a membership: what is recorded is theirs in this group."""
    report = services.report_file(
        actor=world.river.user, message=world.fern_message, guideline_number=2
    )
    assert report.reporter == world.river
    entry = services.action_take(
        membership=world.fern, actor=world.facilitator.user, kind="warn", guideline_number=1
    )
    assert entry.actor == world.facilitator
    # Someone with no place in the message's group can't report it.
    error = refused(
        lambda: services.report_file(
            actor=world.stranger.user, message=world.fern_message, guideline_number=1
        ),
        services.ModerationError,
    )
    assert error.code == "not_a_member"
