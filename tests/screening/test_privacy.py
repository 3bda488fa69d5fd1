"""Intake answers and reviewer notes are the most sensitive data in the system: unreadable
in a raw dump of the database, shown only to the group's facilitators, and reviewer notes
never to the applicant. Refusals are 404s and change nothing."""

import pytest
from django.test import Client

from audit.events import Action
from groups import services as group_services
from screening import services
from screening.models import Application, QuestionKind, ReviewerNote
from tests.screening.conftest import (
    dump_every_table,
    events,
    fresh,
    html,
    make_person,
    questions_of,
    review_url,
    sign_in_verified,
    signed_in_applicant,
    start,
)

pytestmark = pytest.mark.django_db

ANSWER = "I relapsed after my brother Dominic died in March"
NOTE = "Mentions self-harm history; discuss with supervisor Okonkwo"
REASON = "Lives with the other member Priya, conflict risk"
QUESTION = "Is the Thursday court date still going ahead?"
RESPONSE = "Yes, my hearing at Southwark Crown Court is on Thursday"
MESSAGE = "We hope the Riverside clinic can help you better"


@pytest.fixture
def decided(world):
    """An application that went through everything that writes sensitive text."""
    application = start(world.group, world.applicant)
    answers = {}
    for question in questions_of(application):
        if question.kind == QuestionKind.LONG_TEXT:
            answers[str(question.pk)] = ANSWER
        elif question.kind == QuestionKind.YES_NO:
            answers[str(question.pk)] = "no"
        else:
            answers[str(question.pk)] = question.choices[-1]
    services.application_save(application=application, answers=answers, submit=True)
    services.note_add(application=application, actor=world.facilitator.user, body=NOTE)
    services.application_request_info(
        application=application,
        actor=world.facilitator.user,
        question=QUESTION,
        revision=fresh(application).revision,
    )
    services.application_provide_info(application=application, response=RESPONSE)
    services.application_decline(
        application=application,
        actor=world.co_facilitator.user,
        revision=fresh(application).revision,
        message=MESSAGE,
        internal_reason=REASON,
    )
    return fresh(application)


def test_answers_notes_and_messages_are_unreadable_in_a_raw_dump_of_every_table(world, decided):
    # Reading everything through the pages first: nothing may leak into sessions or logs.
    sign_in_verified(world.facilitator.user).get(review_url(decided))
    signed_in_applicant(world.applicant).get(f"/screening/mine/{decided.pk}/")

    dump = dump_every_table()

    # The dump really covers the application, its note and the audit log.
    assert f"screening_application: {decided.pk} |" in dump
    assert "screening_reviewernote: " in dump
    assert "audit_event: " in dump
    folded = dump.casefold()
    for secret in [ANSWER, NOTE, REASON, QUESTION, RESPONSE, MESSAGE]:
        for fragment in (secret, secret[:20], secret[-20:]):
            assert fragment.casefold() not in folded, fragment
    for word in ["Dominic", "self-harm", "Okonkwo", "Priya", "Southwark", "Riverside"]:
        assert word.casefold() not in folded, word
    # ...and yet the app reads it all back.
    assert ANSWER in decided.answers.values()
    assert (decided.info_request, decided.info_response) == (QUESTION, RESPONSE)
    assert decided.message_to_applicant == MESSAGE
    bodies = list(ReviewerNote.objects.filter(application=decided).values_list("body", flat=True))
    assert bodies[0] == NOTE
    assert REASON in bodies[1]


# --- who may see the review page -------------------------------------------------------------


def test_only_the_groups_facilitators_see_answers_and_notes(world, decided):
    url = review_url(decided)
    facilitator_page = html(sign_in_verified(world.facilitator.user).get(url))
    assert ANSWER in facilitator_page and NOTE in facilitator_page and REASON in facilitator_page
    views_before = len(events(Action.APPLICATION_ANSWERS_VIEWED))

    refused = {
        "facilitator of another group": sign_in_verified(world.other_facilitator.user),
        "member of the group": signed_in_applicant(world.member.user),
        "the applicant": signed_in_applicant(world.applicant),
        "site admin": sign_in_verified(world.admin),
        "someone else": signed_in_applicant(make_person("stranger")),
    }
    for who, client in refused.items():
        response = client.get(url)
        assert response.status_code == 404, who
        assert NOTE not in html(response) and ANSWER not in html(response), who
        posted = client.post(url, {"action": "note", "body": "sneaky", "revision": "1"})
        assert posted.status_code == 404, who
        assert client.get(f"/screening/review/{world.group.slug}/").status_code == 404, who

    assert ReviewerNote.objects.count() == 2
    # A refused look is not a look.
    assert len(events(Action.APPLICATION_ANSWERS_VIEWED)) == views_before
    anonymous = Client().get(url)
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/accounts/login/")


def test_a_facilitator_of_another_group_cannot_reach_it_through_their_own_group(world, decided):
    client = sign_in_verified(world.other_facilitator.user)

    response = client.get(f"/screening/review/{world.other_group.slug}/{decided.pk}/")

    assert response.status_code == 404
    response = client.post(
        f"/screening/review/{world.other_group.slug}/{decided.pk}/",
        {"action": "note", "body": "sneaky"},
    )
    assert response.status_code == 404
    assert ReviewerNote.objects.count() == 2


def test_a_former_facilitator_loses_access(world, decided):
    client = sign_in_verified(world.co_facilitator.user)
    assert client.get(review_url(decided)).status_code == 200

    group_services.facilitator_remove(membership=world.co_facilitator, actor=world.admin)

    assert client.get(review_url(decided)).status_code == 404


def test_the_applicant_never_sees_reviewer_notes_or_the_internal_reason(world, decided):
    client = signed_in_applicant(world.applicant)

    pages = [
        html(client.get(f"/screening/mine/{decided.pk}/")),
        html(client.get("/screening/mine/")),
        html(client.get(f"/screening/apply/{world.group.slug}/")),
    ]

    own_page = pages[0]
    assert MESSAGE in own_page  # what was meant for them
    assert RESPONSE in own_page and QUESTION in own_page
    for page in pages:
        assert NOTE not in page
        assert REASON not in page
        assert "Okonkwo" not in page and "Priya" not in page
        assert "Lantern" not in page and "Beacon" not in page  # nor who wrote notes


def test_the_review_page_does_not_name_the_applicants_account(world, decided):
    page = html(sign_in_verified(world.facilitator.user).get(review_url(decided)))

    assert world.applicant.username not in page
    assert world.other_group.name not in page


def test_nobody_opens_or_acts_on_another_persons_application(world, decided):
    other = signed_in_applicant(make_person("applicant-wren"))
    base = f"/screening/mine/{decided.pk}/"

    assert other.get(base).status_code == 404
    assert other.post(base + "answer/", {"response": "hijack"}).status_code == 404
    assert other.post(base + "withdraw/").status_code == 404
    assert ANSWER not in html(other.get("/screening/mine/"))
    assert Client().get(base).status_code == 302


def test_an_open_application_cannot_be_withdrawn_or_answered_by_someone_else(world):
    application = start(world.group, world.applicant)
    other = signed_in_applicant(make_person("applicant-wren"))

    assert other.post(f"/screening/mine/{application.pk}/withdraw/").status_code == 404
    assert other.get(f"/screening/mine/{application.pk}/withdraw/").status_code == 404

    assert Application.objects.get(pk=application.pk).status == "draft"


def test_a_withdrawn_draft_stays_private_to_the_applicant(world):
    """A draft is "kept for you only": withdrawing it must not hand it to the facilitators."""
    draft = start(world.group, world.applicant)
    answers = {str(q.pk): ANSWER for q in questions_of(draft) if q.kind == QuestionKind.LONG_TEXT}
    services.application_save(application=draft, answers=answers, submit=False)
    services.application_withdraw(application=draft)
    client = sign_in_verified(world.facilitator.user)

    assert client.get(review_url(draft)).status_code == 404
    for status in ("", "withdrawn"):
        queue = html(client.get(f"/screening/review/{world.group.slug}/?status={status}"))
        assert f"Application #{draft.pk}<" not in queue
    assert not events(Action.APPLICATION_ANSWERS_VIEWED)
    # The applicant still has it in their own list.
    assert f"/screening/mine/{draft.pk}/" in html(
        signed_in_applicant(world.applicant).get("/screening/mine/")
    )
