"""The questionnaire builder: the default template, versions that applications keep, the
facilitator's formset page, bad input, who may open it, and what is audited."""

import pytest
from django.test import Client

from audit.events import Action
from screening import services
from screening.models import Question, QuestionKind, Questionnaire
from tests.screening.conftest import (
    events,
    form_data,
    html,
    make_person,
    page_forms,
    questions_of,
    sign_in_verified,
    signed_in_applicant,
    start,
    valid_answers,
)

pytestmark = pytest.mark.django_db


def builder_url(group):
    return f"/screening/review/{group.slug}/questions/"


def builder_form(response) -> dict:
    """The builder form as the browser would post it untouched (blank extra form too)."""
    (form,) = [f for f in page_forms(response) if "form-TOTAL_FORMS" in f]
    return form


def test_it_starts_a_new_group_from_the_default_template(world):
    questionnaire = services.questionnaire_ensure(group=world.group)

    assert questionnaire.version == 1
    questions = questions_of(questionnaire)
    assert [q.kind for q in questions] == [
        QuestionKind.YES_NO,
        QuestionKind.LONG_TEXT,
        QuestionKind.SINGLE_CHOICE,
        QuestionKind.YES_NO,
    ]
    assert [q.position for q in questions] == [1, 2, 3, 4]
    assert all(q.required for q in questions)
    eligibility, brings, take_part, safety = questions
    assert "describe you" in eligibility.text
    assert "What brings you" in brings.text
    assert len(take_part.choices) >= 2
    assert "safe" in safety.text
    assert "crisis" in safety.help_text
    # Asking again neither duplicates it nor makes a new version.
    assert services.questionnaire_ensure(group=world.group) == questionnaire
    assert Questionnaire.objects.filter(group=world.group).count() == 1
    (event,) = events(Action.QUESTIONNAIRE_PUBLISHED, group_id=world.group.pk)
    assert event.actor_id is None
    assert event.extra == {"version": 1, "questions": 4}


def test_it_shows_the_current_questions_to_a_facilitator(world):
    client = sign_in_verified(world.facilitator.user)
    services.questionnaire_ensure(group=world.group)

    response = client.get(builder_url(world.group))

    assert response.status_code == 200
    page = html(response)
    assert "Version 1 is live" in page
    for question in questions_of(services.questionnaire_ensure(group=world.group)):
        assert question.text in page


def test_a_new_group_shows_the_default_questions_and_looking_stores_nothing(world):
    """Opening the page is a read: the questions are stored (and audited) by the first
    application, or by the facilitators' first edit, which is then version 1."""
    client = sign_in_verified(world.facilitator.user)

    page = html(client.get(builder_url(world.group)))

    assert "These are the questions every group starts with." in page
    for question in services.default_questions():
        assert question.text in page
    assert not Questionnaire.objects.filter(group=world.group).exists()
    assert not events(Action.QUESTIONNAIRE_PUBLISHED)

    data = builder_form(client.get(builder_url(world.group)))
    data["form-1-text"] = "What brings you here, in a few words?"
    assert client.post(builder_url(world.group), data).status_code == 302
    (stored,) = Questionnaire.objects.filter(group=world.group)
    assert stored.version == 1
    assert stored.created_by == world.facilitator.user
    assert [q.text for q in questions_of(stored)][1] == "What brings you here, in a few words?"


def test_it_publishes_a_new_version_when_a_facilitator_adds_a_question(world):
    services.questionnaire_ensure(group=world.group)  # as the group's first application did
    client = sign_in_verified(world.facilitator.user)
    data = builder_form(client.get(builder_url(world.group)))
    data.update(
        {
            "form-4-kind": QuestionKind.MULTIPLE_CHOICE,
            "form-4-text": "Which evenings suit you?",
            "form-4-help_text": "Choose any.",
            "form-4-choices": "Monday\nTuesday\n\n  Thursday  ",
        }
    )
    data.pop("form-4-required", None)  # optional question

    response = client.post(builder_url(world.group), data, follow=True)

    assert response.status_code == 200
    assert "Version 2 of the questions is live" in html(response)
    current = services.questionnaire_ensure(group=world.group)
    assert current.version == 2
    questions = questions_of(current)
    assert len(questions) == 5
    added = questions[-1]
    assert (added.text, added.kind, added.required, added.choices, added.help_text) == (
        "Which evenings suit you?",
        QuestionKind.MULTIPLE_CHOICE,
        False,
        ["Monday", "Tuesday", "Thursday"],
        "Choose any.",
    )
    # The first four came across unchanged, in the same order.
    old = questions_of(Questionnaire.objects.get(group=world.group, version=1))
    assert [(q.text, q.kind, q.choices) for q in questions[:4]] == [
        (q.text, q.kind, q.choices) for q in old
    ]
    (event,) = events(Action.QUESTIONNAIRE_PUBLISHED, actor=world.facilitator.user)
    assert event.extra == {"version": 2, "questions": 5}
    assert event.target_id == str(current.pk)


def test_it_publishes_an_edit_without_a_new_question(world):
    """Changing a question and leaving the blank "add a question" form alone, as a browser
    posts it (its select sends the first kind, its checkbox starts ticked)."""
    services.questionnaire_ensure(group=world.group)  # as the group's first application did
    client = sign_in_verified(world.facilitator.user)
    data = builder_form(client.get(builder_url(world.group)))
    data["form-1-text"] = "What brings you here, in a few words?"

    response = client.post(builder_url(world.group), data)

    assert response.status_code == 302, html(response)
    current = services.questionnaire_ensure(group=world.group)
    assert current.version == 2
    assert [q.text for q in questions_of(current)][1] == "What brings you here, in a few words?"
    assert len(questions_of(current)) == 4


def test_it_deletes_and_reorders_questions(world):
    client = sign_in_verified(world.facilitator.user)
    data = builder_form(client.get(builder_url(world.group)))
    data["form-0-DELETE"] = "on"
    data["form-3-ORDER"] = "0"  # the safety question first

    response = client.post(builder_url(world.group), data)

    assert response.status_code == 302, html(response)
    texts = [q.text for q in questions_of(services.questionnaire_ensure(group=world.group))]
    assert len(texts) == 3
    assert "safe" in texts[0]
    assert "What brings you" in texts[1]
    assert not any("describe you" in text for text in texts)
    assert [q.position for q in questions_of(services.questionnaire_ensure(group=world.group))] == [
        1,
        2,
        3,
    ]


@pytest.mark.parametrize(
    ("choices", "error"),
    [
        ("Only one", "A choice question needs at least two options."),
        ("Same\nSame", "Each option must be different."),
    ],
)
def test_it_refuses_a_choice_question_without_proper_options(world, choices, error):
    client = sign_in_verified(world.facilitator.user)
    data = builder_form(client.get(builder_url(world.group)))
    data.update(
        {
            "form-4-kind": QuestionKind.SINGLE_CHOICE,
            "form-4-text": "Pick one",
            "form-4-choices": choices,
        }
    )

    response = client.post(builder_url(world.group), data)

    assert response.status_code == 200
    assert error in html(response)
    # Said at the top too, linking to the question, as the list can be long.
    summary = html(response).split('role="alert"')[1].split("</div>")[0]
    assert "Nothing was published yet." in summary
    assert '<a href="#question-5">The new question</a>' in summary and error in summary
    assert 'id="question-5"' in html(response)
    # What was typed is still there, and nothing was published.
    assert "Pick one" in html(response)
    assert services.questionnaire_ensure(group=world.group).version == 1


def test_it_refuses_to_publish_no_questions_at_all(world):
    client = sign_in_verified(world.facilitator.user)
    data = builder_form(client.get(builder_url(world.group)))
    for index in range(4):
        data[f"form-{index}-DELETE"] = "on"

    response = client.post(builder_url(world.group), data, follow=True)

    assert "A questionnaire needs at least one question." in html(response)
    assert services.questionnaire_ensure(group=world.group).version == 1


def test_it_refuses_a_question_without_text(world):
    client = sign_in_verified(world.facilitator.user)
    data = builder_form(client.get(builder_url(world.group)))
    data["form-2-text"] = ""

    response = client.post(builder_url(world.group), data)

    assert response.status_code == 200
    assert "This field is required." in html(response)
    assert services.questionnaire_ensure(group=world.group).version == 1


def test_an_application_started_before_an_edit_keeps_its_questions(world):
    group = world.group
    early = start(group, world.applicant)
    old_questions = questions_of(early)
    services.questionnaire_publish(
        group=group,
        actor=world.facilitator.user,
        questions=[
            {"kind": QuestionKind.SHORT_TEXT, "text": "A brand new question?", "required": True}
        ],
    )
    late_applicant = make_person("applicant-wren")

    # The early applicant still sees (and answers) the questions they started with...
    early_page = html(signed_in_applicant(world.applicant).get(f"/screening/apply/{group.slug}/"))
    assert "A brand new question?" not in early_page
    assert all(q.text in early_page for q in old_questions)
    saved = services.application_save(
        application=early, answers=valid_answers(old_questions), submit=True
    )
    assert saved.questionnaire.version == 1
    assert Question.objects.filter(questionnaire=saved.questionnaire).count() == 4

    # ...and someone starting now gets the new version.
    late_client = signed_in_applicant(late_applicant)
    assert "A brand new question?" in html(late_client.get(f"/screening/apply/{group.slug}/"))
    new_question = questions_of(services.questionnaire_ensure(group=group))[0]
    response = late_client.post(
        f"/screening/apply/{group.slug}/",
        {**form_data({str(new_question.pk): "An answer"}), "submit": "1"},
    )
    assert response.status_code == 302
    assert late_applicant.applications.get().questionnaire.version == 2


def test_it_refuses_everyone_but_the_groups_facilitators(world):
    url = builder_url(world.group)
    refused = {
        "member": sign_in_verified(world.member.user),
        "other group's facilitator": sign_in_verified(world.other_facilitator.user),
        "applicant": signed_in_applicant(world.applicant),
        "site admin": sign_in_verified(world.admin),
    }
    for who, client in refused.items():
        assert client.get(url).status_code == 404, who
        response = client.post(url, {"form-TOTAL_FORMS": "0", "form-INITIAL_FORMS": "0"})
        assert response.status_code == 404, who
    anonymous = Client().get(url)
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/accounts/login/")
    assert services.questionnaire_ensure(group=world.group).version == 1


def test_a_facilitator_without_their_second_factor_is_sent_to_verify(world):
    client = Client()
    client.force_login(world.facilitator.user)

    response = client.get(builder_url(world.group))

    assert response.status_code == 302
    assert "/questions/" not in response["Location"]
