"""The whole screening journey in a real browser, with two people at once: a facilitator
(signed in with 2FA) edits the questions and reviews; an applicant applies, keeps a draft,
sends it, answers a question, is approved, chooses a pseudonym, signs, and is in."""

import re

import pytest
from django_otp.oath import TOTP
from playwright.sync_api import expect

from accounts.models import TOTPDevice, User
from audit.events import Action
from audit.models import Event
from groups import services as group_services
from groups.models import Membership, Status, Topic
from screening import services as screening_services
from screening.models import Application, ApplicationStatus
from tests.e2e.conftest import origin_of

PASSWORD = "lantern harbour quietly 42"
NEW_QUESTION = "Which evening suits you best?"
STORY = "My mother died in January and I have nobody to talk to about it."


def url_is(live_server_url, path):
    return re.compile(re.escape(live_server_url + path) + r"(\?.*)?$")


def sign_in(page, live_server_url, handle, device=None):
    page.goto(live_server_url + "/accounts/login/")
    page.locator('[name="login"]').fill(handle)
    page.locator('[name="password"]').fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    if device is not None:
        expect(page).to_have_url(url_is(live_server_url, "/accounts/login/two-factor/"))
        page.locator('[name="code"]').fill(f"{TOTP(bytes.fromhex(device.key)).token():06d}")
        page.get_by_role("button", name="Continue").click()
    expect(
        page.get_by_role("navigation", name="Main").get_by_role("button", name="Sign out")
    ).to_be_visible()


def nav(page):
    return page.get_by_role("navigation", name="Main")


@pytest.fixture
def applicant_page(browser, live_server_url):
    """A second person's browser, held to the same rules as the ``page`` fixture: only
    the app's own origin, no uncaught errors, no CSP violations."""
    context = browser.new_context(base_url=live_server_url)
    problems, requested = [], []
    context.on("request", lambda request: requested.append(request.url))
    context.on("weberror", lambda error: problems.append(f"uncaught error: {error.error}"))
    context.on(
        "console",
        lambda message: (
            problems.append(f"CSP violation: {message.text}")
            if message.type == "error" and "Content Security Policy" in message.text
            else None
        ),
    )
    page = context.new_page()
    page.on("websocket", lambda ws: requested.append(ws.url))
    yield page
    context.close()
    for url in requested:
        origin = origin_of(url)
        if origin is not None and origin != origin_of(live_server_url):
            problems.append(f"request to another origin: {url}")
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def people():
    admin = User.objects.create_user(username="site-keeper", password=PASSWORD, is_staff=True)
    group = group_services.group_create(
        actor=admin,
        name="Evening Grief Circle",
        topic=Topic.GRIEF,
        description="A gentle weekly space for people who have lost someone close.",
        eligibility="Adults who have been bereaved in the last two years.",
        meeting_rhythm="Tuesdays, 7-8:30 pm",
        listed=True,
        requires_screening=True,
        capacity=8,
        crisis_resources="If you are in danger, call your local emergency number.",
        guidelines=["What is shared here stays here.", "Speak from your own experience."],
        agreement_text="I will keep everything said in this group confidential.",
        agreement_summary="Members keep what is shared confidential.",
    )
    facilitator = User.objects.create_user(username="fac-lantern", password=PASSWORD)
    membership = group_services.facilitator_appoint(group=group, actor=admin, user=facilitator)
    group_services.membership_take_place(
        actor=membership.user,
        group=membership.group,
        pseudonym="Lantern",
        typed_name="Lantern",
        guidelines_acknowledged=True,
    )
    device = TOTPDevice.objects.create(user=facilitator, name="Phone", confirmed=True)
    applicant = User.objects.create_user(username="heron-applicant", password=PASSWORD)
    return group, facilitator, device, applicant


def test_an_applicant_is_screened_approved_and_takes_their_place(
    page, applicant_page, live_server_url, people
):
    group, facilitator, device, applicant = people
    fac, app = page, applicant_page

    # --- the facilitator adds a question --------------------------------------------------
    sign_in(fac, live_server_url, facilitator.username, device)
    fac.goto(f"{live_server_url}/screening/review/{group.slug}/questions/")
    expect(fac.get_by_role("heading", level=1)).to_have_text("Questions for applicants")
    # A new group: the questions every group starts with, stored by the first edit.
    expect(fac.get_by_text("These are the questions every group starts with.")).to_be_visible()
    fac.locator('[name="form-4-text"]').fill(NEW_QUESTION)
    fac.locator('[name="form-4-kind"]').select_option("single_choice")
    fac.locator('[name="form-4-choices"]').fill("Tuesday\nThursday")
    fac.get_by_role("button", name="Publish these questions").click()
    expect(fac.get_by_text("Version 1 of the questions is live")).to_be_visible()
    questions = list(screening_services.questionnaire_ensure(group=group).questions.all())
    assert [q.text for q in questions][-1] == NEW_QUESTION
    eligible, brings, take_part, safe, evening = questions

    # --- the applicant finds the group, applies and keeps a draft ---------------------------
    sign_in(app, live_server_url, applicant.username)
    app.goto(f"{live_server_url}/groups/{group.slug}/")
    app.get_by_role("link", name="Apply to join").click()
    expect(app).to_have_url(url_is(live_server_url, f"/screening/apply/{group.slug}/"))
    expect(app.get_by_role("heading", level=1)).to_have_text("Apply to Evening Grief Circle")
    expect(app.get_by_text(group.eligibility)).to_be_visible()
    app.locator(f'[name="q_{eligible.pk}"][value="yes"]').check()
    app.locator(f'[name="q_{brings.pk}"]').fill(STORY)
    app.locator(f'[name="q_{take_part.pk}"][value="{take_part.choices[0]}"]').check()
    app.get_by_role("button", name="Save as a draft").click()
    expect(app.get_by_text("Your draft is saved")).to_be_visible()
    assert Application.objects.get(applicant=applicant).status == ApplicationStatus.DRAFT

    # ...comes back later through "My applications"...
    app.goto(live_server_url + "/")
    nav(app).get_by_role("link", name=re.compile("My applications")).click()
    app.get_by_role("link", name="Continue your draft").click()
    expect(app.locator(f'[name="q_{brings.pk}"]')).to_have_value(STORY)
    expect(app.locator(f'[name="q_{eligible.pk}"][value="yes"]')).to_be_checked()
    # ...finishes it and sends it.
    app.locator(f'[name="q_{safe.pk}"][value="yes"]').check()
    app.get_by_label("Thursday").check()
    app.get_by_role("button", name="Send my application").click()
    expect(app.get_by_text("Your application is sent")).to_be_visible()
    application = Application.objects.get(applicant=applicant)
    assert application.status == ApplicationStatus.SUBMITTED
    assert application.questionnaire.version == 1
    expect(app.get_by_text("Sent — waiting for the facilitators")).to_be_visible()

    # --- the facilitator reviews it and asks something -----------------------------------
    fac.goto(f"{live_server_url}/screening/review/{group.slug}/")
    fac.get_by_role("link", name=f"Application #{application.pk}").click()
    expect(fac.get_by_role("heading", level=1)).to_have_text(f"Application #{application.pk}")
    expect(fac.get_by_text(STORY)).to_be_visible()
    expect(fac.get_by_text("Thursday")).to_be_visible()
    fac.locator("summary", has_text="Ask the applicant something").click()
    fac.get_by_label("What would you like to ask?").fill("Have you been in a group before?")
    fac.get_by_role("button", name="Send question").click()
    expect(fac.get_by_text("Your question is sent to the applicant.")).to_be_visible()

    # --- the applicant sees the news and answers inside the application -------------------
    app.goto(live_server_url + "/")
    news = nav(app).get_by_role("link", name=re.compile("My applications"))
    expect(news).to_contain_text("1 new")
    news.click()
    app.get_by_role("link", name="Answer the facilitators' question").click()
    expect(app.get_by_text("Have you been in a group before?")).to_be_visible()
    app.get_by_label("Your answer").fill("No, this would be my first.")
    app.get_by_role("button", name="Send my answer").click()
    expect(app.get_by_text("Your answer is sent to the facilitators.")).to_be_visible()
    expect(nav(app).get_by_role("link", name=re.compile("My applications"))).not_to_contain_text(
        "new"
    )

    # --- the facilitator approves ----------------------------------------------------------
    fac.reload()
    expect(fac.get_by_text("No, this would be my first.")).to_be_visible()
    fac.locator("summary", has_text="Approve").click()
    fac.get_by_label("Message to the applicant (optional)").first.fill("Welcome, see you Tuesday.")
    fac.get_by_role("button", name="Approve", exact=True).click()
    expect(fac.get_by_text("Approved.", exact=True)).to_be_visible()

    # --- the applicant chooses a pseudonym, signs, and is in ------------------------------
    app.goto(live_server_url + "/screening/mine/")
    app.get_by_role("link", name="Evening Grief Circle").click()
    expect(app.get_by_text("Welcome, see you Tuesday.")).to_be_visible()
    app.get_by_role("link", name="Choose your name and sign the agreement").click()
    expect(app).to_have_url(url_is(live_server_url, f"/groups/{group.slug}/join/"))
    app.locator('[name="pseudonym"]').fill("Kestrel")
    app.locator('[name="guidelines_acknowledged"]').check()
    app.locator('[name="typed_name"]').fill("Kestrel")
    app.get_by_role("button", name="Choose this name and sign").click()
    expect(app).to_have_url(url_is(live_server_url, f"/groups/{group.slug}/home/"))
    nav(app).get_by_role("link", name="My groups").click()
    expect(app).to_have_url(url_is(live_server_url, "/groups/mine/"))
    card = app.locator(".card", has_text="Evening Grief Circle")
    expect(card).to_contain_text("Kestrel")
    expect(card).to_contain_text("Active")

    membership = Membership.objects.get(group=group, user=applicant)
    assert (membership.status, membership.pseudonym) == (Status.ACTIVE, "Kestrel")
    application.refresh_from_db()
    assert application.status == ApplicationStatus.APPROVED
    # Every look at the answers was recorded, about the applicant.
    looks = Event.objects.filter(action=int(Action.APPLICATION_ANSWERS_VIEWED))
    assert looks.count() >= 2
    assert set(looks.values_list("subject_id", flat=True)) == {applicant.pk}
    assert set(looks.values_list("actor_id", flat=True)) == {facilitator.pk}
