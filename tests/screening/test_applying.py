"""Applying: the apply page, drafts kept and resumed, submitting, one open application per
group, unlisted groups through their link, and bad input that is explained without
losing anything."""

import re

import pytest
from django.test import Client

from audit.events import Action
from groups import services as group_services
from screening import services
from screening.answers import AnswerErrors
from screening.models import Application, ApplicationStatus, QuestionKind, Questionnaire
from tests.screening.conftest import (
    events,
    form_data,
    fresh,
    html,
    make_group,
    make_person,
    page_forms,
    questions_of,
    sign_in_verified,
    signed_in_applicant,
    start,
    submitted,
    valid_answers,
)

pytestmark = pytest.mark.django_db

S = ApplicationStatus


def apply_url(group, link=None):
    return f"/screening/apply/{group.slug}/" + (f"?link={link}" if link else "")


def apply_form(response) -> dict:
    (form,) = [f for f in page_forms(response) if "link" in f]
    return form


@pytest.fixture
def custom_group(world):
    """A group whose questions cover every kind of answer."""
    services.questionnaire_publish(
        group=world.group,
        actor=world.facilitator.user,
        questions=[
            {"kind": QuestionKind.SHORT_TEXT, "text": "What should we call you?"},
            {"kind": QuestionKind.LONG_TEXT, "text": "Tell us about yourself"},
            {
                "kind": QuestionKind.SINGLE_CHOICE,
                "text": "Preferred evening",
                "choices": ["Monday", "Tuesday"],
            },
            {
                "kind": QuestionKind.MULTIPLE_CHOICE,
                "text": "Topics you'd like",
                "choices": ["Loss of a parent", "Loss of a partner", "Loss of a child"],
                "required": False,
            },
            {"kind": QuestionKind.YES_NO, "text": "Are you over 18?"},
        ],
    )
    return world.group


def question_ids(group):
    return [str(q.pk) for q in questions_of(services.questionnaire_ensure(group=group))]


def a_saved_draft(group, applicant) -> Application:
    """A draft with two answers saved, as the person left it."""
    short, long_, *_ = question_ids(group)
    application = start(group, applicant)
    return services.application_save(
        application=application,
        answers={short: "Sam", long_: "I lost my father in spring."},
        submit=False,
    )


# --- the page ---------------------------------------------------------------------------------


def test_it_shows_eligibility_guidelines_agreement_and_crisis_contacts(world):
    client = signed_in_applicant(world.applicant)

    response = client.get(apply_url(world.group))

    assert response.status_code == 200
    page = html(response)
    group = world.group
    assert group.eligibility in page
    assert "What is shared here stays here." in page
    assert "Members keep what is shared confidential." in page
    assert group.crisis_resources in page
    for question in questions_of(services.questionnaire_ensure(group=group)):
        assert question.text in page
    # Looking at the page starts nothing.
    assert not Application.objects.exists()


def test_the_group_page_links_to_the_apply_page(world):
    client = signed_in_applicant(world.applicant)

    page = html(client.get(f"/groups/{world.group.slug}/"))

    assert f'href="/screening/apply/{world.group.slug}/"' in page
    assert "Apply to join" in page


def test_anonymous_visitors_are_asked_to_sign_in(world):
    response = Client().get(apply_url(world.group))

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_an_unknown_group_is_not_found(world):
    client = signed_in_applicant(world.applicant)

    assert client.get("/screening/apply/no-such-group/").status_code == 404


# --- drafts and submitting -------------------------------------------------------------------


def test_it_saves_a_draft_and_shows_it_again_when_they_come_back(custom_group, world):
    client = signed_in_applicant(world.applicant)
    short, long_, single, multiple, yes_no = question_ids(custom_group)
    data = apply_form(client.get(apply_url(custom_group)))
    data.update(
        form_data(
            {
                short: "Sam",
                long_: "I lost my father in spring.\nIt has been hard.",
                multiple: ["Loss of a partner", "Loss of a parent"],
            }
        )
    )
    data["save"] = "1"

    response = client.post(apply_url(custom_group), data, follow=True)

    assert response.redirect_chain == [(apply_url(custom_group), 302)]
    assert "Your draft is saved" in html(response)
    application = Application.objects.get(applicant=world.applicant)
    assert application.status == S.DRAFT
    assert application.answers == {
        short: "Sam",
        long_: "I lost my father in spring.\nIt has been hard.",
        # Kept in the questionnaire's order, whatever order they were ticked in.
        multiple: ["Loss of a parent", "Loss of a partner"],
    }
    # Coming back later (another visit): everything is where they left it.
    again = apply_form(signed_in_applicant(world.applicant).get(apply_url(custom_group)))
    assert again[f"q_{short}"] == "Sam"
    assert again[f"q_{long_}"] == "I lost my father in spring.\nIt has been hard."
    assert again[f"q_{multiple}"] == ["Loss of a parent", "Loss of a partner"]
    assert f"q_{single}" not in again and f"q_{yes_no}" not in again
    mine = html(client.get("/screening/mine/"))
    assert "Continue your draft" in mine
    # A draft is not for the facilitators.
    assert not events(Action.APPLICATION_SUBMITTED)
    (started,) = events(Action.APPLICATION_STARTED)
    assert (started.actor_id, started.subject_id) == (world.applicant.pk, world.applicant.pk)


def test_it_submits_and_then_shows_the_application_instead_of_the_form(world):
    client = signed_in_applicant(world.applicant)
    questions = questions_of(services.questionnaire_ensure(group=world.group))
    data = {**form_data(valid_answers(questions)), "submit": "1", "link": ""}

    response = client.post(apply_url(world.group), data, follow=True)

    application = Application.objects.get(applicant=world.applicant)
    assert response.redirect_chain == [(f"/screening/mine/{application.pk}/", 302)]
    assert "Your application is sent" in html(response)
    # While they wait, the group's crisis contacts stay in front of them.
    assert world.group.crisis_resources in html(response)
    assert application.status == S.SUBMITTED
    assert application.submitted_at is not None
    assert application.answers == valid_answers(questions)
    (event,) = events(Action.APPLICATION_SUBMITTED)
    assert event.actor_id == world.applicant.pk
    assert event.subject_id == world.applicant.pk
    assert event.target_id == str(application.pk)
    assert event.group_id == world.group.pk
    assert event.extra == {"from": "draft", "to": "submitted"}
    # The audit row never holds the answers.
    assert "My answer" not in str(event.extra)
    # Back on the apply page: the application, not a second form.
    again = client.get(apply_url(world.group))
    assert again.status_code == 302
    assert again["Location"] == f"/screening/mine/{application.pk}/"


def test_a_groups_first_application_stores_the_questions_the_page_showed(world):
    """Looking at a new group's apply page stores nothing; the first application stores
    the default questions (version 1, by no one) and its answers under their ids."""
    client = signed_in_applicant(world.applicant)
    page = client.get(apply_url(world.group))
    assert not Questionnaire.objects.filter(group=world.group).exists()
    defaults = services.default_questions()
    assert [q.kind for q in defaults] == [
        QuestionKind.YES_NO,
        QuestionKind.LONG_TEXT,
        QuestionKind.SINGLE_CHOICE,
        QuestionKind.YES_NO,
    ]
    typed = {
        "q_default-1": "yes",
        "q_default-2": "I lost my sister in the spring.",
        "q_default-3": defaults[2].choices[0],
        "q_default-4": "yes",
    }
    for name in typed:
        assert f'name="{name}"' in html(page)

    response = client.post(apply_url(world.group), {**typed, "submit": "1", "link": ""})

    application = Application.objects.get(applicant=world.applicant)
    assert response.status_code == 302
    assert response["Location"] == f"/screening/mine/{application.pk}/"
    (stored,) = Questionnaire.objects.filter(group=world.group)
    assert (stored.version, stored.created_by) == (1, None)
    assert application.questionnaire == stored
    assert application.status == S.SUBMITTED
    assert application.answers == {
        str(q.pk): typed[f"q_default-{q.position}"] for q in questions_of(stored)
    }
    (published,) = events(Action.QUESTIONNAIRE_PUBLISHED)
    assert published.actor_id is None


def test_answers_to_the_default_questions_count_once_another_application_stored_them(world):
    client = signed_in_applicant(world.applicant)
    defaults = services.default_questions()
    client.get(apply_url(world.group))
    stored = services.questionnaire_ensure(group=world.group)  # someone else applied first

    typed = {
        "q_default-1": "yes",
        "q_default-2": "I lost my sister in the spring.",
        "q_default-3": defaults[2].choices[0],
        "q_default-4": "yes",
    }
    response = client.post(apply_url(world.group), {**typed, "save": "1", "link": ""})

    assert response.status_code == 302
    application = Application.objects.get(applicant=world.applicant)
    assert application.questionnaire == stored
    assert application.answers == {
        str(q.pk): typed[f"q_default-{q.position}"] for q in questions_of(stored)
    }


def test_a_draft_can_be_submitted_later(world):
    application = start(world.group, world.applicant)
    answers = valid_answers(questions_of(application))
    services.application_save(application=application, answers=answers, submit=False)
    client = signed_in_applicant(world.applicant)
    data = apply_form(client.get(apply_url(world.group)))

    response = client.post(apply_url(world.group), {**data, "submit": "1"})

    assert response.status_code == 302
    assert fresh(application).status == S.SUBMITTED
    assert fresh(application).answers == answers


def test_one_person_has_one_open_application_per_group(world):
    first = start(world.group, world.applicant)
    second = start(world.group, world.applicant)

    assert first == second
    assert Application.objects.filter(applicant=world.applicant).count() == 1
    # The same person may apply to another group at the same time.
    other = start(world.other_group, world.applicant)
    assert other != first


def test_a_member_of_the_group_cannot_apply_again(world):
    client = signed_in_applicant(world.member.user)
    questions = questions_of(services.questionnaire_ensure(group=world.group))

    response = client.post(
        apply_url(world.group), {**form_data(valid_answers(questions)), "submit": "1"}
    )

    assert response.status_code == 200
    assert "You already have a place in this group." in html(response)
    assert not Application.objects.filter(applicant=world.member.user).exists()


def test_someone_removed_from_the_group_cannot_apply_again(world):
    membership = world.member
    membership.status = "removed"
    membership.save(update_fields=["status"])

    with pytest.raises(services.ScreeningError, match="can't apply to this group again"):
        start(world.group, membership.user)


def test_a_group_that_welcomes_by_invitation_takes_no_applications(world, admin):
    invitation_only = make_group(admin, "Invitation Only Circle", requires_screening=False)
    client = signed_in_applicant(world.applicant)

    assert "Apply to join" not in html(client.get(f"/groups/{invitation_only.slug}/"))
    assert client.get(apply_url(invitation_only)).status_code == 404
    questions = questions_of(services.questionnaire_ensure(group=world.group))
    response = client.post(
        apply_url(invitation_only), {**form_data(valid_answers(questions)), "submit": "1"}
    )
    assert response.status_code == 404
    assert not Application.objects.exists()


# --- unlisted groups --------------------------------------------------------------------------


def test_an_unlisted_group_is_reached_only_through_its_link(world, admin):
    hidden = make_group(admin, "Quiet Harbour", listed=False)
    client = signed_in_applicant(world.applicant)

    assert client.get(apply_url(hidden)).status_code == 404
    assert client.get(apply_url(hidden, link="not-the-link")).status_code == 404
    # The link page of the group points to the apply page with the link.
    group_page = html(client.get(f"/groups/link/{hidden.link_token}/"))
    assert f"/screening/apply/{hidden.slug}/?link={hidden.link_token}" in group_page

    questions = questions_of(services.questionnaire_ensure(group=hidden))
    response = client.get(apply_url(hidden, link=hidden.link_token))

    assert response.status_code == 200
    assert hidden.eligibility in html(response)
    data = apply_form(response)
    assert data["link"] == hidden.link_token
    saved = client.post(
        apply_url(hidden), {**data, **form_data(valid_answers(questions)), "save": "1"}
    )
    assert saved.status_code == 302
    assert saved["Location"] == apply_url(hidden, link=hidden.link_token)
    # Once they have an application there, its pages work for them without the link...
    assert client.get(apply_url(hidden)).status_code == 200
    # ...but not for anyone else.
    assert signed_in_applicant(make_person("stranger")).get(apply_url(hidden)).status_code == 404


def test_a_reset_link_no_longer_opens_the_apply_page(world, admin):
    hidden = make_group(admin, "Quiet Harbour", listed=False)
    old_token = hidden.link_token
    group_services.group_link_reset(group=hidden, actor=admin)
    client = signed_in_applicant(world.applicant)

    assert client.get(apply_url(hidden, link=old_token)).status_code == 404
    assert client.get(apply_url(hidden, link=hidden.link_token)).status_code == 200


# --- bad input: a clear error, and nothing lost ------------------------------------------------


def post_and_check_nothing_lost(client, group, application, data, error, *, typed=None):
    """Posts ``data``; the page must explain ``error``, show exactly what was typed, and
    leave the saved draft as it was."""
    before = fresh(application)

    response = client.post(apply_url(group), data)

    assert response.status_code == 200
    page = html(response)
    assert error in page
    assert 'role="alert"' in page or "errorlist" in page
    shown = apply_form(response)
    typed = typed if typed is not None else [name for name in data if name.startswith("q_")]
    for name in typed:
        assert shown[name] == data[name], name
    after = fresh(application)
    assert after.answers == before.answers
    assert after.status == S.DRAFT
    assert after.revision == before.revision
    assert not events(Action.APPLICATION_SUBMITTED)
    return response


def test_it_explains_missing_required_answers(custom_group, world):
    application = a_saved_draft(custom_group, world.applicant)
    client = signed_in_applicant(world.applicant)
    short, long_, single, multiple, yes_no = question_ids(custom_group)
    data = {
        "link": "",
        f"q_{short}": "Sam",
        f"q_{long_}": "   ",  # only spaces is no answer
        f"q_{single}": "Tuesday",
        "submit": "1",
    }

    response = post_and_check_nothing_lost(
        client, custom_group, application, data, "This question needs an answer."
    )

    # long text, yes/no: each at its field and again in the summary at the top
    assert html(response).count("This question needs an answer.") == 2 * 2
    assert f'id="id_q_{long_}_error"' in html(response)
    assert f'id="id_q_{yes_no}_error"' in html(response)
    # The optional question may stay empty.
    assert f'id="id_q_{multiple}_error"' not in html(response)


def test_only_the_optional_question_is_marked_optional(custom_group, world):
    client = signed_in_applicant(world.applicant)
    page = html(client.get(apply_url(custom_group)))
    short, long_, single, multiple, yes_no = question_ids(custom_group)

    def field_block(question_id):
        (block,) = [b for b in page.split('<div class="field') if f'name="q_{question_id}"' in b]
        return block

    for question_id in (short, long_, single, yes_no):
        assert "(optional)" not in field_block(question_id)
        assert 'aria-required="true"' in field_block(question_id)
    assert "(optional)" in field_block(multiple)
    assert "aria-required" not in field_block(multiple)


def test_missing_answers_are_fine_in_a_draft(custom_group, world):
    client = signed_in_applicant(world.applicant)
    short, *_ = question_ids(custom_group)

    response = client.post(apply_url(custom_group), {f"q_{short}": "Sam", "save": "1"})

    assert response.status_code == 302
    assert Application.objects.get().answers == {short: "Sam"}


@pytest.mark.parametrize("action", ["submit", "save"])
def test_it_explains_an_oversized_long_answer_and_keeps_the_text(custom_group, world, action):
    application = a_saved_draft(custom_group, world.applicant)
    client = signed_in_applicant(world.applicant)
    short, long_, single, multiple, yes_no = question_ids(custom_group)
    too_long = ("I want to say this. " * 201)[:4001]
    data = {
        "link": "",
        f"q_{short}": "Sam",
        f"q_{long_}": too_long,
        f"q_{single}": "Monday",
        f"q_{yes_no}": "yes",
        action: "1",
    }

    response = post_and_check_nothing_lost(
        client,
        custom_group,
        application,
        data,
        "Please keep this answer under 4000 characters (it has 4001).",
    )

    assert apply_form(response)[f"q_{long_}"] == too_long


def test_a_long_answer_at_the_limit_is_accepted(custom_group, world):
    application = a_saved_draft(custom_group, world.applicant)
    short, long_, single, multiple, yes_no = question_ids(custom_group)
    at_limit = "x" * 4000

    services.application_save(
        application=application,
        answers={short: "Sam", long_: at_limit, single: "Monday", yes_no: "no"},
        submit=True,
    )

    assert fresh(application).answers[long_] == at_limit


def test_it_explains_an_oversized_short_answer(custom_group, world):
    application = a_saved_draft(custom_group, world.applicant)
    client = signed_in_applicant(world.applicant)
    short, *_ = question_ids(custom_group)
    data = {"link": "", f"q_{short}": "S" * 201, "save": "1"}

    post_and_check_nothing_lost(
        client,
        custom_group,
        application,
        data,
        "Please keep this answer under 200 characters (it has 201).",
    )


@pytest.mark.parametrize(
    ("which", "value", "error"),
    [
        (2, "Sunday", "Please choose one of the options given."),
        (3, ["Loss of a parent", "Loss of a pet"], "Please choose from the options given."),
        (4, "maybe", "Please answer yes or no."),
    ],
)
def test_it_refuses_a_choice_that_is_not_in_the_list(custom_group, world, which, value, error):
    application = a_saved_draft(custom_group, world.applicant)
    client = signed_in_applicant(world.applicant)
    ids = question_ids(custom_group)
    data = {
        "link": "",
        f"q_{ids[0]}": "Sam, typed again",
        f"q_{ids[1]}": "A longer story, typed again.",
        f"q_{ids[which]}": value,
        "submit": "1",
    }

    response = post_and_check_nothing_lost(
        client, custom_group, application, data, error, typed=[f"q_{ids[0]}", f"q_{ids[1]}"]
    )

    assert f'id="id_q_{ids[which]}_error"' in html(response)


def test_it_refuses_a_tampered_question_id(custom_group, world):
    application = a_saved_draft(custom_group, world.applicant)
    client = signed_in_applicant(world.applicant)
    ids = question_ids(custom_group)
    answers = {
        ids[0]: "Sam",
        ids[1]: "All of my story, typed with care.",
        ids[2]: "Monday",
        ids[4]: "yes",
    }
    data = {"link": "", **form_data(answers), "q_99999": "injected", "submit": "1"}

    response = post_and_check_nothing_lost(
        client,
        custom_group,
        application,
        data,
        "This form didn&#x27;t match the current questions",
        typed=[f"q_{key}" for key in answers],
    )

    assert "injected" not in str(fresh(application).answers)
    # The typed answers are all still on the page, ready to send again.
    shown = apply_form(response)
    assert all(shown[f"q_{key}"] == value for key, value in answers.items())


def test_the_service_refuses_answers_to_questions_it_does_not_have(world):
    application = start(world.group, world.applicant)
    answers = valid_answers(questions_of(application))
    answers["99999"] = "extra"

    with pytest.raises(AnswerErrors) as raised:
        services.application_save(application=application, answers=answers, submit=True)

    assert "didn't match the current questions" in raised.value.errors[None]
    assert fresh(application).status == S.DRAFT
    assert fresh(application).answers == {}


def test_answers_cannot_be_changed_once_sent(world):
    application = start(world.group, world.applicant)
    answers = valid_answers(questions_of(application))
    services.application_save(application=application, answers=answers, submit=True)

    with pytest.raises(services.ScreeningError, match="already been sent"):
        services.application_save(application=application, answers={}, submit=False)

    assert fresh(application).answers == answers


def test_every_screening_page_has_unique_ids_and_labels_that_point_somewhere(world):
    application = submitted(world.group, world.applicant)
    services.application_request_info(
        application=application,
        actor=world.facilitator.user,
        question="Anything else?",
        revision=fresh(application).revision,
    )
    applicant = signed_in_applicant(world.applicant)
    facilitator = sign_in_verified(world.facilitator.user)
    pages = {
        "apply": applicant.get(apply_url(world.other_group)),
        "mine": applicant.get("/screening/mine/"),
        "application": applicant.get(f"/screening/mine/{application.pk}/"),
        "queue": facilitator.get(f"/screening/review/{world.group.slug}/?status="),
        "questions": facilitator.get(f"/screening/review/{world.group.slug}/questions/"),
    }
    for name, response in pages.items():
        assert response.status_code == 200, name
        page = html(response)
        ids = re.findall(r'\sid="([^"]+)"', page)
        assert len(ids) == len(set(ids)), (name, sorted({i for i in ids if ids.count(i) > 1}))
        for target in re.findall(r'<label for="([^"]+)"', page):
            assert target in ids, (name, target)
