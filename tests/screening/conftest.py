"""Fixtures for the screening tests: people, groups, questionnaires and applications built
through the app's own services, and clients that sign in through the real pages
(password, then the 2FA code for facilitators)."""

import functools
from dataclasses import dataclass
from html.parser import HTMLParser

import pytest
from django.test import Client

from accounts.models import TOTPDevice, User
from groups.models import Group, Membership, Topic
from screening import services
from screening.models import Application
from tests import factories
from tests.database import dump_every_table, events  # noqa: F401 - for the test modules
from tests.factories import (  # noqa: F401 - the builders, for the test modules
    CHEAP_PASSWORD_HASHERS,
    PASSWORD,
    appoint,
    give_place,
    make_person,
    sign_in_through_pages,
    totp_code,
    totp_device,
    valid_answers,
)


@pytest.fixture(autouse=True)
def _cheap_argon2(settings):
    settings.PASSWORD_HASHERS = CHEAP_PASSWORD_HASHERS


# --- people, groups and places (built in tests/factories.py) -----------------------------------

# Groups here are screened unless a test says otherwise.
make_group = functools.partial(factories.make_group, requires_screening=True)


# --- clients that sign in through the pages -----------------------------------------------------


def sign_in(user, *, client=None) -> Client:
    """Signed in the quick way (tests/factories.py), 2FA-verified when the person has an
    authenticator. Tests of signing in itself use ``sign_in_through_pages``."""
    verified = TOTPDevice.objects.filter(user=user, confirmed=True).exists()
    return factories.sign_in(client or Client(), user, verified=verified)


def sign_in_verified(user) -> Client:
    """A facilitator (or admin), signed in with their second factor (set up if needed)."""
    return factories.sign_in(Client(), user, verified=True)


def signed_in_applicant(user) -> Client:
    return factories.sign_in(Client(), user, verified=False)


# --- applications ---------------------------------------------------------------------------


def questions_of(application_or_questionnaire):
    questionnaire = getattr(application_or_questionnaire, "questionnaire", None)
    questionnaire = questionnaire or application_or_questionnaire
    return list(questionnaire.questions.all())


def form_data(answers: dict) -> dict:
    """The apply form's POST data for answers keyed by question id."""
    return {f"q_{key}": value for key, value in answers.items()}


def start(group, applicant) -> Application:
    return services.application_start(group=group, applicant=applicant)


def submitted(group, applicant, answers=None) -> Application:
    return factories.submitted_application(group, applicant, answers)


def fresh(application) -> Application:
    return Application.objects.get(pk=application.pk)


# --- a group with facilitators and applicants -----------------------------------------------


@dataclass
class World:
    admin: User
    group: Group
    facilitator: Membership
    co_facilitator: Membership
    member: Membership
    applicant: User
    other_group: Group
    other_facilitator: Membership


@pytest.fixture
def admin(db):
    return make_person("site-keeper", staff=True)


@pytest.fixture
def world(admin) -> World:
    group = make_group(admin, "Evening Grief Circle")
    other = make_group(admin, "Morning Recovery Room", topic=Topic.ADDICTION)
    return World(
        admin=admin,
        group=group,
        facilitator=appoint(group, make_person("fac-lantern"), "Lantern", actor=admin),
        co_facilitator=appoint(group, make_person("fac-beacon"), "Beacon", actor=admin),
        member=give_place(group, make_person("member-fox"), "Quiet Fox"),
        applicant=make_person("applicant-heron"),
        other_group=other,
        other_facilitator=appoint(other, make_person("fac-other"), "Harbour", actor=admin),
    )


# --- reading the results --------------------------------------------------------------------


def html(response) -> str:
    return response.content.decode()


def review_url(application) -> str:
    return f"/screening/review/{application.group.slug}/{application.pk}/"


class _FormReader(HTMLParser):
    """Collects each <form>'s fields as a browser would submit them untouched."""

    def __init__(self):
        super().__init__()
        self.forms = []
        self._form = None
        self._select = None
        self._select_first = None
        self._textarea = None
        self._option_value = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self._form = []
            self.forms.append(self._form)
        if self._form is None:
            return
        name = attrs.get("name")
        if tag == "input" and name and attrs.get("type") not in ("submit", "button", "image"):
            kind = attrs.get("type", "text")
            if kind in ("checkbox", "radio"):
                if "checked" in attrs:
                    self._form.append((name, attrs.get("value", "on")))
            else:
                self._form.append((name, attrs.get("value", "")))
        elif tag == "select" and name:
            self._select, self._select_first = name, None
        elif tag == "option" and self._select:
            value = attrs.get("value")
            if self._select_first is None:
                self._select_first = value
            if "selected" in attrs:
                self._form.append((self._select, value))
                self._select_first = False
        elif tag == "textarea" and name:
            self._textarea = [name, ""]

    def handle_data(self, data):
        if self._textarea is not None:
            self._textarea[1] += data

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "select" and self._select:
            if self._select_first:  # nothing selected: the browser sends the first option
                self._form.append((self._select, self._select_first))
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            name, value = self._textarea
            # The HTML parser keeps the newline browsers drop after <textarea>.
            self._form.append((name, value[1:] if value.startswith("\n") else value))
            self._textarea = None


def page_forms(response) -> list[dict]:
    """Every form on the page as {name: value or [values]}, as a browser would post it."""
    reader = _FormReader()
    reader.feed(html(response))
    result = []
    for fields in reader.forms:
        data = {}
        for name, value in fields:
            if name in data:
                data[name] = (
                    [*data[name], value]
                    if isinstance(data[name], list)
                    else [
                        data[name],
                        value,
                    ]
                )
            else:
                data[name] = value
        result.append(data)
    return result
