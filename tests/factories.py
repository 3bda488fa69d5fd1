"""The one place tests build data: people, groups, places, meetings, messages, applications,
audit events and signed-in clients. Every builder calls the app's own code (the services a
page or socket would call), never raw inserts, so the data is what the app itself makes.

The conftests re-export what their test modules use; an area whose tests want other
defaults (screened groups, a longer retention) says so with ``functools.partial``.
"""

import time
from datetime import timedelta
from itertools import count
from types import SimpleNamespace

from django.contrib.auth.hashers import Argon2PasswordHasher
from django.test import Client
from django.utils import timezone

from audit.events import Action
from audit.models import Event
from audit.services import record_event

PASSWORD = "lantern harbour quietly 42"

CRISIS_RESOURCES = "Call the Night Line on 0800 555 0199, any time."
GUIDELINES = ["What is shared here stays here.", "Speak from your own experience."]


# --- people ---------------------------------------------------------------------------------------


def make_user(
    username,
    *,
    email=None,
    phone=None,
    emergency_contact=None,
    password=None,
):
    """A user with optional contact details. No password by default: Argon2 is slow."""
    from accounts.models import User

    user = User.objects.create_user(username=username, email=email, password=password)
    if phone is not None or emergency_contact is not None:
        user.phone = phone
        user.emergency_contact = emergency_contact
        user.save(update_fields=["phone", "emergency_contact"])
    return user


def make_person(
    handle,
    *,
    password=PASSWORD,
    staff=False,
    superuser=False,
    email=None,
    email_verified=True,
    phone=None,
    emergency_contact=None,
    **fields,
):
    """A person who can sign in with ``password``; optionally staff (an admin), a
    superuser, with a recovery email (confirmed unless ``email_verified=False``), a phone
    number, an emergency contact, or other account fields."""
    from accounts.models import User

    user = User.objects.create_user(
        username=handle, password=password, is_staff=staff or superuser, is_superuser=superuser
    )
    if email is not None:
        user.set_recovery_email(email)
        user.recovery_email_verified = email_verified
    if phone is not None:
        fields["phone"] = phone
    if emergency_contact is not None:
        fields["emergency_contact"] = emergency_contact
    for name, value in fields.items():
        setattr(user, name, value)
    if email is not None or fields:
        user.save()
    return user


# --- groups and places ----------------------------------------------------------------------------


def make_group(actor, name="Evening Grief Circle", **overrides):
    """A listed grief group created by ``actor`` (an admin) through the groups service; not
    screened unless ``requires_screening=True``.

    Its meetings are NOT end-to-end encrypted unless ``e2ee_meetings=True``: most room
    tests speak the plain protocol (a body in ``send``), which an E2EE room refuses. The
    app's own default (groups.models.Group.e2ee_meetings, group_create) stays on; the E2EE
    tests (tests/meetings/test_e2ee_*.py) ask for it."""
    from groups import services
    from groups.models import Topic

    fields = {
        "topic": Topic.GRIEF,
        "description": f"A gentle weekly space: {name}.",
        "eligibility": "Adults who have lost someone close.",
        "meeting_rhythm": "Tuesdays, 7-8:30 pm",
        "listed": True,
        "requires_screening": False,
        "e2ee_meetings": False,
        "crisis_resources": CRISIS_RESOURCES,
        "guidelines": GUIDELINES,
        "agreement_text": "I keep what is said here confidential.",
        "agreement_summary": "Members keep what is shared confidential.",
    }
    fields.update(overrides)
    return services.group_create(actor=actor, name=name, **fields)


def take_place(membership, pseudonym):
    """The member chooses a pseudonym and signs the agreement (the place becomes active)."""
    from groups import services

    return services.membership_take_place(
        actor=membership.user,
        group=membership.group,
        pseudonym=pseudonym,
        typed_name=pseudonym,
        guidelines_acknowledged=True,
    )


def give_place(group, user, pseudonym=None, *, actor=None):
    """A member's place; with a pseudonym, also chosen and signed (active)."""
    from groups import services

    membership = services.membership_create(group=group, user=user, actor=actor, reason="test")
    return membership if pseudonym is None else take_place(membership, pseudonym)


def appoint(group, user, pseudonym=None, *, actor):
    """A facilitator appointed by ``actor``; with a pseudonym, their place taken too."""
    from groups import services

    membership = services.facilitator_appoint(group=group, actor=actor, user=user)
    return membership if pseudonym is None else take_place(membership, pseudonym)


# --- meetings and messages ------------------------------------------------------------------------


def schedule(
    group,
    actor,
    *,
    starts_in=timedelta(minutes=-5),
    lasts=timedelta(hours=1),
    title="Tuesday meeting",
):
    """One meeting; by default it started five minutes ago, so its room is open.

    The service takes it from a facilitator of the group: from the group's first one when
    ``actor`` (say the admin who made the group) is not one."""
    from groups import services as group_services
    from groups.models import Membership, Role
    from meetings import services

    starts_at = timezone.now() + starts_in
    if not Membership.objects.filter(user=actor, group=group, role=Role.FACILITATOR).exists():
        facilitator = Membership.objects.filter(group=group, role=Role.FACILITATOR).first()
        if facilitator is None:
            facilitator = group_services.facilitator_appoint(group=group, actor=actor, user=actor)
        actor = facilitator.user
    return services.meeting_schedule(
        group=group, actor=actor, title=title, starts_at=starts_at, ends_at=starts_at + lasts
    )[0]


_client_ids = count(1)


def post(meeting, membership, body):
    """A message in the room, through the same service the socket uses."""
    from meetings import services

    return services.message_post(
        meeting_id=meeting.pk,
        membership_id=membership.pk,
        client_id=f"test-msg-{next(_client_ids):08d}",
        body=body,
    ).message


# --- screening ------------------------------------------------------------------------------------


def valid_answers(questions) -> dict:
    """A complete, valid answer for every question, keyed by question id (a string)."""
    from screening.models import QuestionKind

    answers = {}
    for question in questions:
        if question.kind == QuestionKind.YES_NO:
            answers[str(question.pk)] = "yes"
        elif question.kind == QuestionKind.SINGLE_CHOICE:
            answers[str(question.pk)] = question.choices[0]
        elif question.kind == QuestionKind.MULTIPLE_CHOICE:
            answers[str(question.pk)] = question.choices[:1]
        else:
            answers[str(question.pk)] = f"My answer to question {question.position}."
    return answers


def submitted_application(group, applicant, answers=None):
    """An application started and submitted through the screening service."""
    from screening import services

    application = services.application_start(group=group, applicant=applicant)
    if answers is None:
        answers = valid_answers(application.questionnaire.questions.all())
    return services.application_save(application=application, answers=answers, submit=True)


# --- audit ----------------------------------------------------------------------------------------


def make_events(count, *, ip=None, action=Action.LOGIN_SUCCEEDED, **kwargs) -> list[Event]:
    """``count`` chained audit events; ``ip`` may be a string or a callable of the index."""
    events = []
    for i in range(count):
        address = ip(i) if callable(ip) else ip
        events.append(record_event(action=action, ip=address, extra={"n": i}, **kwargs))
    return events


# --- second factor and signing in -----------------------------------------------------------------


def totp_device(user):
    """A confirmed authenticator app for the person (made once, reused)."""
    from accounts.models import TOTPDevice

    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    return device or TOTPDevice.objects.create(user=user, name="Phone", confirmed=True)


def totp_code(device) -> str:
    """The authenticator's current code, usable even if this step's code was just used."""
    from django_otp.oath import TOTP

    from accounts.models import TOTPDevice

    device = TOTPDevice.objects.get(pk=device.pk)
    # A code is accepted once per 30 s step; a second sign-in in the same step (another
    # client of the same person) needs what time passing would do.
    step = int(time.time()) // TOTPDevice.STEP
    if device.last_t >= step - 1:
        TOTPDevice.objects.filter(pk=device.pk).update(last_t=step - 2)
    return f"{TOTP(bytes.fromhex(device.key)).token():06d}"


def sign_in(client, user, *, verified=True):
    """``client`` signed in as ``user`` the quick way, for tests that are not about
    signing in: the session holds what the login pages leave in it (when it started, that
    the password was checked just now and, when ``verified``, the authenticator device that
    django-otp's middleware looks for, made if the person has none yet) without posting the
    forms and waiting for Argon2. Tests of signing in itself use the pages
    (``sign_in_through_pages``). Returns the client.
    """
    from allauth.account.internal.flows.login import record_authentication
    from django_otp import DEVICE_ID_SESSION_KEY

    from accounts.sessions import LAST_SEEN_KEY, STARTED_KEY

    client.force_login(user)
    session = client.session  # a new store object on every access: change one, then save it
    now = time.time()
    session[STARTED_KEY] = now
    session[LAST_SEEN_KEY] = now
    # What allauth notes after a password step (for "recently signed in" checks).
    record_authentication(SimpleNamespace(session=session), user, method="password")
    if verified:
        session[DEVICE_ID_SESSION_KEY] = totp_device(user).persistent_id
    session.save()
    return client


def signed_in_client(user, *, verified=True, **client_kwargs) -> Client:
    """A new client, signed in with ``sign_in``."""
    return sign_in(Client(**client_kwargs), user, verified=verified)


def sign_in_through_pages(user, *, client=None, password=PASSWORD, **client_kwargs) -> Client:
    """Sign in as a person does: the login form, then (when they have an authenticator)
    the code page. For tests whose subject is signing in or what it records."""
    from accounts.models import TOTPDevice

    client = client or Client(**client_kwargs)
    response = client.post("/accounts/login/", {"login": user.username, "password": password})
    assert response.status_code == 302, response.content.decode()[:2000]
    if TOTPDevice.objects.filter(user=user, confirmed=True).exists():
        assert response["Location"] == "/accounts/login/two-factor/", response["Location"]
        response = client.post(
            "/accounts/login/two-factor/", {"code": totp_code(totp_device(user))}
        )
        assert response.status_code == 302, response.content.decode()[:2000]
        assert response["Location"] != "/accounts/login/two-factor/"
    return client


# --- passwords ------------------------------------------------------------------------------------


class CheapArgon2PasswordHasher(Argon2PasswordHasher):
    """Still Argon2id, with parameters cheap enough for a suite that signs in a lot (the
    live server in tests/e2e verifies it too: the parameters travel in the hash).

    Production's cost (Django's defaults, most of a second per hash here) is checked in
    tests/accounts; everywhere else it would only make the suite slow.
    """

    time_cost = 1
    memory_cost = 1024
    parallelism = 1


CHEAP_PASSWORD_HASHERS = [f"{__name__}.CheapArgon2PasswordHasher"]
