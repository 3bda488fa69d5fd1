"""The group setting "End-to-end encrypted meetings" (issue 19 point 1): on for new groups,
changed by the group's facilitators only, audited, and applied from the next meeting (a
meeting takes the setting when its room first opens, then keeps it)."""

from datetime import timedelta

import pytest

from audit.events import Action
from groups import services
from groups.services import GroupError
from meetings import services as meeting_services
from meetings.e2ee import E2EE_ROOM_SENTENCE, PLAIN_ROOM_SENTENCE
from meetings.models import Meeting
from tests.factories import schedule
from tests.groups.conftest import (
    appoint,
    events,
    give_place,
    make_group,
    make_person,
    sign_in,
    sign_in_verified,
)
from tests.groups.test_manage import edit_data

pytestmark = pytest.mark.django_db


@pytest.fixture
def group(admin):
    return make_group(admin, e2ee_meetings=True)


@pytest.fixture
def facilitator(admin, group):
    person = make_person("fac-one")
    appoint(group, person, "Lantern", actor=admin)
    return person


def test_a_new_group_has_e2ee_meetings_unless_its_creator_says_otherwise(admin):
    group = services.group_create(
        actor=admin,
        name="Carers Circle",
        topic="carers",
        description="For carers.",
        eligibility="Carers.",
        meeting_rhythm="Mondays",
        crisis_resources="Call the Night Line.",
        guidelines=["Be kind."],
        agreement_text="I keep it confidential.",
    )
    assert group.e2ee_meetings is True
    [created] = events(Action.GROUP_CREATED, target_id=str(group.pk))
    assert created.extra == {"e2ee_meetings": True}


def test_turning_it_off_is_audited_and_applies_from_the_next_meeting(group, facilitator):
    running = schedule(group, facilitator)
    assert meeting_services.meeting_fix_e2ee(meeting=running) is True  # its room opened
    next_week = schedule(group, facilitator, starts_in=timedelta(days=7))
    client = sign_in_verified(facilitator)
    form = client.get(f"/groups/{group.slug}/manage/edit/")
    assert "End-to-end encrypted meetings" in form.content.decode()

    response = client.post(f"/groups/{group.slug}/manage/edit/", edit_data(group))  # unticked

    assert response.status_code == 302
    group.refresh_from_db()
    assert group.e2ee_meetings is False
    [changed] = events(Action.E2EE_MEETINGS_CHANGED)
    assert (changed.actor_id, changed.group_id, changed.extra) == (
        facilitator.pk,
        group.pk,
        {"e2ee_meetings": False},
    )
    assert Meeting.objects.get(pk=running.pk).e2ee is True  # the meeting under way keeps it
    next_week = Meeting.objects.get(pk=next_week.pk)
    assert next_week.e2ee is None and next_week.is_e2ee is False
    assert meeting_services.meeting_fix_e2ee(meeting=next_week) is False


def test_saving_it_unchanged_records_no_change_of_it(group, facilitator):
    client = sign_in_verified(facilitator)
    client.post(f"/groups/{group.slug}/manage/edit/", edit_data(group, e2ee_meetings="on"))
    assert events(Action.E2EE_MEETINGS_CHANGED) == []


def test_only_the_groups_facilitators_change_it(admin, group, facilitator):
    member = make_person("member-one")
    give_place(group, member, "River")
    other = make_group(admin, "Another Circle")
    outsider = make_person("fac-two")
    appoint(other, outsider, "Heron", actor=admin)
    for person in (member, outsider):
        with pytest.raises(GroupError):
            services.group_e2ee_meetings_set(group=group, actor=person, enabled=False)
    response = sign_in(member).post(f"/groups/{group.slug}/manage/edit/", edit_data(group))
    assert response.status_code in (403, 404)
    group.refresh_from_db()
    assert group.e2ee_meetings is True
    assert events(Action.E2EE_MEETINGS_CHANGED) == []


def test_the_room_page_says_in_plain_words_whether_the_meeting_is_e2ee(group, facilitator):
    member = make_person("member-one")
    give_place(group, member, "River")
    meeting = schedule(group, facilitator)
    response = sign_in(member).get(f"/meetings/{meeting.pk}/")
    assert response.context["e2ee"] is True
    assert response.context["e2ee_sentence"] == E2EE_ROOM_SENTENCE
    assert "not the people who run this site" in E2EE_ROOM_SENTENCE
    assert Meeting.objects.get(pk=meeting.pk).e2ee is True  # fixed as its room opened

    services.group_e2ee_meetings_set(group=group, actor=facilitator, enabled=False)
    later = schedule(group, facilitator, title="Later")
    response = sign_in(member).get(f"/meetings/{later.pk}/")
    assert response.context["e2ee"] is False
    assert response.context["e2ee_sentence"] == PLAIN_ROOM_SENTENCE
