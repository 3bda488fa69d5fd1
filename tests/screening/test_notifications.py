"""Telling the applicant: in the app (a "new" badge on "My applications" until they look),
and by email only to a verified recovery email, saying only that there is news — never
the group's name or topic, which anyone glancing at an inbox could read."""

import re
import socket

import pytest

from screening import services
from screening.models import ApplicationStatus
from tests.screening.conftest import (
    form_data,
    fresh,
    html,
    make_person,
    questions_of,
    sign_in_verified,
    signed_in_applicant,
    start,
    submitted,
    valid_answers,
)

pytestmark = pytest.mark.django_db

S = ApplicationStatus
ADDRESS = "heron.applicant@mail.test"


def news_badge(page) -> str | None:
    """The text of the badge next to "My applications" in the main navigation."""
    nav = re.search(r'<nav class="site-nav".*?</nav>', page, re.S).group(0)
    link = re.search(r'href="/screening/mine/">(.*?)</a>', nav, re.S)
    assert link, "no My applications link in the navigation"
    badge = re.search(r'<span class="badge">(.*?)</span>', link.group(1))
    return badge.group(1) if badge else None


def request_info(world, application):
    return services.application_request_info(
        application=application,
        actor=world.facilitator.user,
        question="Which evenings?",
        revision=fresh(application).revision,
    )


def approve(world, application):
    return services.application_approve(
        application=application, actor=world.facilitator.user, revision=fresh(application).revision
    )


def decline(world, application):
    return services.application_decline(
        application=application,
        actor=world.facilitator.user,
        revision=fresh(application).revision,
        message="Not this time.",
        internal_reason="Private.",
    )


def waitlist(world, application):
    return services.application_waitlist(
        application=application, actor=world.facilitator.user, revision=fresh(application).revision
    )


@pytest.fixture
def verified_applicant(world):
    return make_person("applicant-verified", email=ADDRESS, email_verified=True)


@pytest.mark.parametrize("decision", [request_info, approve, decline, waitlist])
def test_news_is_emailed_to_a_verified_address_without_naming_the_group(
    world, verified_applicant, decision, mailoutbox, django_capture_on_commit_callbacks
):
    application = submitted(world.group, verified_applicant)
    assert mailoutbox == []  # sending is not news to the sender

    with django_capture_on_commit_callbacks(execute=True):
        decision(world, application)

    (email,) = mailoutbox
    assert email.to == [ADDRESS]
    text = f"{email.subject}\n{email.body}".casefold()
    assert "news" in text
    assert "/screening/mine/" in email.body
    group = world.group
    for revealing in [
        group.name,
        group.slug,
        group.get_topic_display(),
        group.topic,
        "grief",
        "circle",
        group.eligibility,
        "Which evenings?",
        "Not this time.",
        "Private.",
        "approved",
        "declined",
        "waiting list",
    ]:
        assert revealing.casefold() not in text, revealing
    # Plain text only: no HTML part that could say more.
    assert email.content_subtype == "plain" and not getattr(email, "alternatives", [])


@pytest.mark.parametrize("decision", [request_info, approve, decline])
def test_no_email_without_a_verified_address(
    world, decision, mailoutbox, django_capture_on_commit_callbacks
):
    unverified = make_person(
        "applicant-unverified", email="not.yet@mail.test", email_verified=False
    )
    no_email = make_person("applicant-no-email")
    applications = [submitted(world.group, unverified), submitted(world.group, no_email)]

    with django_capture_on_commit_callbacks(execute=True):
        for application in applications:
            decision(world, application)

    assert mailoutbox == []


def test_the_applicants_own_steps_send_no_email(
    world, verified_applicant, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        application = submitted(world.group, verified_applicant)
    with django_capture_on_commit_callbacks(execute=True):
        request_info(world, application)
    mailoutbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        services.application_provide_info(application=application, response="Tuesdays.")
        services.application_withdraw(application=application)

    assert mailoutbox == []


def test_a_refused_decision_sends_nothing(
    world, verified_applicant, mailoutbox, django_capture_on_commit_callbacks
):
    application = submitted(world.group, verified_applicant)
    stale = fresh(application).revision
    with django_capture_on_commit_callbacks(execute=True):
        waitlist(world, application)
    mailoutbox.clear()

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(services.StaleDecision):
        services.application_decline(
            application=application, actor=world.facilitator.user, revision=stale
        )

    assert mailoutbox == []


# --- in the app ---------------------------------------------------------------------------------


def test_the_nav_shows_news_until_the_applicant_looks(world):
    application = submitted(world.group, world.applicant)
    client = signed_in_applicant(world.applicant)
    assert news_badge(html(client.get("/groups/"))) is None

    request_info(world, application)

    assert news_badge(html(client.get("/groups/"))) == "1 new"
    assert news_badge(html(client.get("/groups/"))) == "1 new"  # still, until they look
    mine = html(client.get("/screening/mine/"))
    assert '<span class="badge">New</span>' in mine  # which application has news
    assert news_badge(html(client.get("/groups/"))) is None
    assert '<span class="badge">New</span>' not in html(client.get("/screening/mine/"))


def test_opening_the_application_also_counts_as_looking(world):
    first = submitted(world.group, world.applicant)
    second = submitted(world.other_group, world.applicant)
    client = signed_in_applicant(world.applicant)
    approve(world, first)
    services.application_decline(
        application=second,
        actor=world.other_facilitator.user,
        revision=fresh(second).revision,
    )
    assert news_badge(html(client.get("/groups/"))) == "2 new"

    client.get(f"/screening/mine/{first.pk}/")

    assert news_badge(html(client.get("/groups/"))) == "1 new"


def test_the_applicants_own_steps_are_not_news_to_them(world):
    client = signed_in_applicant(world.applicant)
    questions = questions_of(services.questionnaire_ensure(group=world.group))
    answers = valid_answers(questions)

    saved = client.post(
        f"/screening/apply/{world.group.slug}/", {**form_data(answers), "save": "1"}, follow=True
    )
    assert news_badge(html(saved)) is None
    sent = client.post(
        f"/screening/apply/{world.group.slug}/", {**form_data(answers), "submit": "1"}, follow=True
    )
    assert news_badge(html(sent)) is None
    application = world.applicant.applications.get()
    withdrawn = client.post(f"/screening/mine/{application.pk}/withdraw/", follow=True)
    assert news_badge(html(client.get("/groups/"))) is None
    assert "Withdrawn" in html(withdrawn)


def test_nobody_else_sees_the_applicants_news(world):
    application = start(world.group, world.applicant)
    services.application_save(
        application=application, answers=valid_answers(questions_of(application)), submit=True
    )
    approve(world, application)

    other = signed_in_applicant(make_person("applicant-wren"))

    assert news_badge(html(other.get("/groups/"))) is None


@pytest.mark.django_db(transaction=True)
def test_a_mail_server_outage_does_not_break_the_decision(world, verified_applicant, settings):
    """The email goes out after the decision is committed; if the mail server is down the
    facilitator still gets their page (not a server error inviting a retry)."""
    with socket.socket() as probe:  # a port nobody listens on: connection refused
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", closed_port, 2
    application = submitted(world.group, verified_applicant)
    client = sign_in_verified(world.facilitator.user)

    response = client.post(
        f"/screening/review/{world.group.slug}/{application.pk}/",
        {"action": "approve", "revision": fresh(application).revision, "message": ""},
    )

    assert response.status_code == 302
    assert fresh(application).status == S.APPROVED
