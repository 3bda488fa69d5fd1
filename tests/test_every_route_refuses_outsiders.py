"""Every URL pattern and every websocket route has an outsider case, and it is refused.

The walk resolves every named URL of the root URLconf (included apps too) and every
websocket route of supportgroups/routing.py, and fails when one is missing from the tables
below, or when a table names a route that no longer exists. So a new page or socket cannot
ship without saying who must not reach it, and that is then requested for real.

Adding a page: add a row to URLS under its name. ``Route(kwargs, allowed, refused)``: the
kwargs are built from the ``World`` (add what it needs there, through tests/factories.py);
``allowed`` is someone who gets through (proving the kwargs name a real thing, so that a
404 for an outsider is a refusal, not a typo); ``refused`` maps each outsider to what they
get: LOGIN (redirect to sign in), NOT_FOUND, FORBIDDEN. Pages for whoever is signed in
(their own account) refuse the anonymous visitor only. ``Public(reason)`` rows are open to
all, say why, and must answer an anonymous visitor without an error.
Moving a page to another app (or name): rename its row.

The Django admin is walked on its own (``test_every_admin_route_...``): every admin route,
unnamed ones too, is requested by each kind of outsider.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from enum import Enum

import pytest
from channels.testing import WebsocketCommunicator
from django.contrib import admin
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse
from django.utils import timezone

from accounts.models import User
from board import services as board_services
from board.models import Thread
from console import services as console_services
from console.models import Incident, SecurityNotice
from groups import services as group_services
from groups.models import Group, Membership
from meetings.models import Meeting
from moderation import services as moderation_services
from moderation.models import Report, SafetyFlag
from privacy import services as privacy_services
from privacy.models import ConsentRequest
from screening.models import Application
from supportgroups.asgi import application as asgi_application
from supportgroups.routing import websocket_urlpatterns
from tests.factories import (
    CHEAP_PASSWORD_HASHERS,
    appoint,
    give_place,
    make_group,
    make_person,
    post,
    schedule,
    signed_in_client,
    submitted_application,
)
from tests.sockets import (  # noqa: F401 - the fixtures socket tests need
    _channel_layer_per_test,
    close_worker_connections,
    run,
    socket_headers,
)


@pytest.fixture(autouse=True)
def _cheap_argon2(settings):
    settings.PASSWORD_HASHERS = CHEAP_PASSWORD_HASHERS


# --- who asks ----------------------------------------------------------------------------------


class Who(Enum):
    ANONYMOUS = "anonymous"
    STRANGER = "a signed-in stranger (no group)"
    MEMBER = "a member of the group (wrong role for facilitator and admin pages)"
    APPLICANT = "the applicant (their own application)"
    FACILITATOR = "the group's facilitator, 2FA-verified"
    OTHER_FACILITATOR = "the other group's facilitator, 2FA-verified (wrong group)"
    ADMIN = "a site admin, 2FA-verified"
    UNVERIFIED_ADMIN = "a site admin whose session skipped the second factor"


class Refusal(Enum):
    LOGIN = "redirected to sign in"
    NOT_FOUND = "404"
    FORBIDDEN = "403"


# --- the data every row draws on ---------------------------------------------------------------


@dataclass
class World:
    admin: User
    group: Group  # screened
    facilitator: Membership  # Lantern
    member: Membership  # River
    fern: Membership  # another member, whose message River reported
    applicant: User
    application: Application
    other_group: Group
    other_facilitator: Membership  # Beacon
    stranger: User
    meeting: Meeting  # open now
    report: Report
    flag: SafetyFlag
    invitation_token: str
    thread: Thread  # on the group's board, started by River
    consent: ConsentRequest  # Lantern asks River for consent to share
    incident: Incident  # about Lantern's account and the group; its members were told
    notice: SecurityNotice  # River's notice of it

    def person(self, who: Who) -> tuple[User | None, bool]:
        """The user who asks, and whether their session passed the second factor."""
        return {
            Who.ANONYMOUS: (None, False),
            Who.STRANGER: (self.stranger, False),
            Who.MEMBER: (self.member.user, False),
            Who.APPLICANT: (self.applicant, False),
            Who.FACILITATOR: (self.facilitator.user, True),
            Who.OTHER_FACILITATOR: (self.other_facilitator.user, True),
            Who.ADMIN: (self.admin, True),
            Who.UNVERIFIED_ADMIN: (self.admin, False),
        }[who]

    def client(self, who: Who) -> Client:
        user, verified = self.person(who)
        return Client() if user is None else signed_in_client(user, verified=verified)


def build_world() -> World:
    admin_user = make_person("site-keeper", staff=True)
    group = make_group(admin_user, "Evening Grief Circle", requires_screening=True)
    other_group = make_group(admin_user, "Morning Recovery Circle")
    facilitator = appoint(group, make_person("fac-lantern"), "Lantern", actor=admin_user)
    member = give_place(group, make_person("member-river"), "River")
    fern = give_place(group, make_person("member-fern"), "Fern")
    other_facilitator = appoint(other_group, make_person("fac-beacon"), "Beacon", actor=admin_user)
    applicant = make_person("applicant-heron")
    meeting = schedule(group, facilitator.user)
    message = post(meeting, fern, "Something unkind.")
    report = moderation_services.report_file(actor=member.user, message=message, guideline_number=1)
    flag = moderation_services.safety_flag_raise(
        actor=member.user, group=group, about=fern, note="Worried."
    )
    _, token = group_services.invitation_create(group=group, actor=facilitator.user)
    thread = board_services.thread_start(
        actor=member.user, group=group, title="A hard week", body="Writing between meetings."
    )
    consent = privacy_services.consent_request(
        actor=facilitator.user,
        membership=member,
        items=["attendance"],
        recipient="Dr A. Patel, Riverside Clinic",
        purpose="Continuity of care.",
        summary=None,
        valid_until=timezone.localdate() + timedelta(days=30),
    )
    incident = console_services.incident_open(
        actor=admin_user,
        title="Lantern's account taken over",
        description="Many failed sign-ins, then one from a new address.",
        detected_at=meeting.starts_at,
        users=[facilitator.user],
        groups=[group],
        ip=None,
    )
    console_services.incident_notify(actor=admin_user, incident=incident, ip=None)
    return World(
        admin=admin_user,
        group=group,
        facilitator=facilitator,
        member=member,
        fern=fern,
        applicant=applicant,
        application=submitted_application(group, applicant),
        other_group=other_group,
        other_facilitator=other_facilitator,
        stranger=make_person("stranger-wren"),
        meeting=meeting,
        report=report,
        flag=flag,
        invitation_token=token,
        thread=thread,
        consent=consent,
        incident=incident,
        notice=SecurityNotice.objects.get(incident=incident, user=member.user),
    )


@pytest.fixture
def world(db) -> World:
    return build_world()


# --- the table ---------------------------------------------------------------------------------


Kwargs = Callable[[World], dict]


def no_kwargs(world: World) -> dict:
    return {}


def slug(world: World) -> dict:
    return {"slug": world.group.slug}


def meeting_id(world: World) -> dict:
    return {"meeting_id": world.meeting.pk}


def thread_number(world: World) -> dict:
    return {"slug": world.group.slug, "number": world.thread.number}


def application_id(world: World) -> dict:
    return {"application_id": world.application.pk}


def incident_id(world: World) -> dict:
    return {"incident_id": world.incident.pk}


def notice_id(world: World) -> dict:
    return {"notice_id": world.notice.pk}


@dataclass(frozen=True)
class Route:
    kwargs: Kwargs
    allowed: Who
    refused: dict[Who, Refusal]
    method: str = "get"  # "post" for views that only take a form


@dataclass(frozen=True)
class Public:
    reason: str
    kwargs: Kwargs = field(default=no_kwargs)


def signed_in(kwargs: Kwargs = no_kwargs, *, method: str = "get", allowed=Who.STRANGER) -> Route:
    """The person's own pages: whoever is signed in, about themselves."""
    return Route(kwargs, allowed, {Who.ANONYMOUS: Refusal.LOGIN}, method)


def members(kwargs: Kwargs, *, method: str = "get") -> Route:
    """The group's members only; everyone else gets the 404 of a missing page."""
    return Route(
        kwargs,
        Who.MEMBER,
        {
            Who.ANONYMOUS: Refusal.LOGIN,
            Who.STRANGER: Refusal.NOT_FOUND,
            Who.OTHER_FACILITATOR: Refusal.NOT_FOUND,
        },
        method,
    )


def facilitators(kwargs: Kwargs, *, method: str = "get") -> Route:
    """The group's facilitators only (members too get a 404)."""
    return Route(
        kwargs,
        Who.FACILITATOR,
        {
            Who.ANONYMOUS: Refusal.LOGIN,
            Who.STRANGER: Refusal.NOT_FOUND,
            Who.MEMBER: Refusal.NOT_FOUND,
            Who.OTHER_FACILITATOR: Refusal.NOT_FOUND,
        },
        method,
    )


def admins(kwargs: Kwargs = no_kwargs, *, method: str = "get", anonymous=Refusal.LOGIN):
    """Site admins only; an anonymous visitor is sent to sign in like on every private page
    (issue 21: an admin whose session timed out must not think the console is gone); the
    signed-in others get the 404 of a missing page."""
    return Route(
        kwargs,
        Who.ADMIN,
        {
            Who.ANONYMOUS: anonymous,
            Who.STRANGER: Refusal.NOT_FOUND,
            Who.MEMBER: Refusal.NOT_FOUND,
            Who.FACILITATOR: Refusal.NOT_FOUND,
        },
        method,
    )


def own_application(*, method: str = "get") -> Route:
    """The applicant's own application; anyone else (its group's facilitator too, who
    reviews it elsewhere) gets a 404."""
    return Route(
        application_id,
        Who.APPLICANT,
        {
            Who.ANONYMOUS: Refusal.LOGIN,
            Who.STRANGER: Refusal.NOT_FOUND,
            Who.MEMBER: Refusal.NOT_FOUND,
            Who.FACILITATOR: Refusal.NOT_FOUND,
        },
        method,
    )


def own_consent(*, method: str = "get") -> Route:
    """A request for the member's consent, read and answered by that member only (the
    facilitator who asked sees it on the group's page, not here)."""
    return Route(
        lambda world: {"consent_id": world.consent.pk},
        Who.MEMBER,
        {
            Who.ANONYMOUS: Refusal.LOGIN,
            Who.STRANGER: Refusal.NOT_FOUND,
            Who.FACILITATOR: Refusal.NOT_FOUND,
            Who.OTHER_FACILITATOR: Refusal.NOT_FOUND,
        },
        method,
    )


TOKEN_IS_THE_KEY = "the token in the link is the credential; a wrong one is refused"

URLS: dict[str, Route | Public] = {
    # --- the site ---
    "home": Public("the front page"),
    "healthz": Public("the load balancer's health check; says only ok or not"),
    "leave_quickly": Public("the leave-quickly button must work for anyone, from any page"),
    # --- signing in (allauth's views under our names) ---
    "account_login": Public("signing in"),
    "account_signup": Public("signing up"),
    "account_logout": Public("signing out; harmless when not signed in"),
    "account_inactive": Public("allauth's notice for a deactivated account"),
    "account_two_factor_login": Public(
        "the code step of signing in; without a password step first it sends the visitor "
        "back to sign in (tests/accounts/test_two_factor.py)"
    ),
    "account_reset_password": Public("asking for a password reset"),
    "account_reset_password_done": Public("the 'check your email' page after that"),
    "account_reset_password_backup_code": Public("resetting a password with a backup code"),
    "account_reset_password_from_key": Public(
        TOKEN_IS_THE_KEY, kwargs=lambda world: {"uidb36": "1", "key": "not-a-real-key"}
    ),
    "account_reauthenticate": signed_in(),
    "account_change_password": signed_in(),
    "account_email_allauth": Public(
        "only redirects to our own email page (account_email), which needs signing in"
    ),
    # --- the privacy centre: each person's own account ---
    "account_home": signed_in(),
    "account_contact": signed_in(),
    "account_email": signed_in(),
    "account_verify_email": Public(TOKEN_IS_THE_KEY, kwargs=lambda world: {"token": "bogus"}),
    "account_sessions": signed_in(),
    "account_activity": signed_in(),
    "account_export": signed_in(),
    "account_delete": signed_in(),
    "account_consents": signed_in(),
    "account_consent": own_consent(),
    "account_consent_withdraw": own_consent(method="post"),
    "account_two_factor": signed_in(),
    "account_two_factor_setup": signed_in(),
    "account_two_factor_disable": signed_in(),
    "account_backup_codes_regenerate": signed_in(method="post"),
    # --- groups ---
    "groups:directory": Public("the directory of listed groups"),
    "groups:detail": Public("a listed group's public page", kwargs=slug),
    "groups:by_link": Public(
        "an unlisted group's public page, for those given its link; " + TOKEN_IS_THE_KEY,
        kwargs=lambda world: {"token": world.group.link_token},
    ),
    "groups:mine": signed_in(),
    "groups:invitation": signed_in(lambda world: {"token": world.invitation_token}),
    "groups:new": admins(),
    "groups:home": members(slug),
    "groups:take_place": members(slug),
    "groups:sign": members(slug),
    "groups:agreements": members(slug),
    "groups:change_pseudonym": members(slug, method="post"),
    "groups:leave": members(slug),
    "groups:manage": facilitators(slug),
    "groups:edit": facilitators(slug),
    "groups:publish_agreement": facilitators(slug),
    "groups:create_invitation": facilitators(slug, method="post"),
    "groups:reset_link": facilitators(slug, method="post"),
    "groups:appoint_facilitator": admins(slug, method="post"),
    "groups:remove_facilitator": admins(
        lambda world: {"slug": world.group.slug, "membership_id": world.facilitator.pk},
        method="post",
    ),
    # --- meetings ---
    "meetings:room": members(meeting_id),
    "meetings:attendance": facilitators(meeting_id),
    "meetings:open": facilitators(meeting_id, method="post"),
    "meetings:close": facilitators(meeting_id, method="post"),
    "meetings:schedule": facilitators(slug),
    # --- the group board (its door is the meetings': tests/board/test_board_access.py) ---
    "board:index": members(slug),
    "board:new_thread": members(slug),
    "board:thread": members(thread_number),
    "board:reply": members(thread_number, method="post"),
    "board:thread_state": facilitators(thread_number, method="post"),
    # River's own post (River started the thread).
    "board:delete_post": members(
        lambda world: {**thread_number(world), "post_number": 1}, method="post"
    ),
    # --- screening ---
    "screening:apply": signed_in(slug, allowed=Who.APPLICANT),
    "screening:mine": signed_in(),
    "screening:application": own_application(),
    "screening:provide_info": own_application(method="post"),
    "screening:withdraw": own_application(),
    "screening:queue": facilitators(slug),
    "screening:questionnaire": facilitators(slug),
    "screening:review": facilitators(
        lambda world: {"slug": world.group.slug, "application_id": world.application.pk}
    ),
    # --- moderation ---
    # Each facilitator's own overview of the groups they facilitate (any group).
    "moderation:dashboard": Route(
        no_kwargs,
        Who.OTHER_FACILITATOR,
        {
            Who.ANONYMOUS: Refusal.LOGIN,
            Who.STRANGER: Refusal.NOT_FOUND,
            Who.MEMBER: Refusal.NOT_FOUND,
        },
    ),
    "moderation:about_me": signed_in(),
    "moderation:group": facilitators(slug),
    "moderation:members": facilitators(slug),
    "moderation:log": facilitators(slug),
    "moderation:raise_flag": members(slug),
    "moderation:member": facilitators(
        lambda world: {"slug": world.group.slug, "membership_id": world.member.pk}
    ),
    "moderation:reveal": facilitators(
        lambda world: {"slug": world.group.slug, "membership_id": world.member.pk}
    ),
    "moderation:report": facilitators(
        lambda world: {"slug": world.group.slug, "report_id": world.report.pk}
    ),
    # A member reports a post on the board (behind the board's door).
    "moderation:report_post": members(lambda world: {**thread_number(world), "post_number": 1}),
    # A facilitator hides a post straight from its thread.
    "moderation:hide_post": facilitators(lambda world: {**thread_number(world), "post_number": 1}),
    "moderation:handle_flag": facilitators(
        lambda world: {"slug": world.group.slug, "flag_id": world.flag.pk}, method="post"
    ),
    # --- sharing outside the app (privacy/disclosure_urls.py) ---
    "disclosures:group_consents": facilitators(slug),
    "disclosures:consent_new": facilitators(
        lambda world: {"slug": world.group.slug, "membership_id": world.member.pk}
    ),
    "disclosures:consent_package": facilitators(
        lambda world: {"slug": world.group.slug, "consent_id": world.consent.pk}, method="post"
    ),
    "disclosures:legal_list": admins(),
    "disclosures:legal_new": admins(),
    "disclosures:access_review": admins(),
    # --- the audit console ---
    "audit:events": admins(),
    "audit:export": admins(),
    "audit:person": admins(),
    "audit:group_access": admins(lambda world: {"group_id": world.group.pk}),
    "audit:signals": admins(),
    # --- breach response (incidents) ---
    "audit:incidents": admins(),
    "audit:incident_open": admins(),
    "audit:incident": admins(incident_id),
    "audit:incident_sign_out": admins(incident_id),
    "audit:incident_renew_credentials": admins(incident_id),
    "audit:incident_hold_meetings": admins(incident_id),
    "audit:incident_lift_hold": admins(incident_id),
    "audit:incident_rotate_keys": admins(incident_id),
    "audit:incident_rotate_keys_step": admins(incident_id, method="post"),
    "audit:incident_notify": admins(incident_id),
    "audit:incident_regulator": admins(incident_id),
    "audit:incident_close": admins(incident_id),
    "audit:incident_report": admins(incident_id),
    # A member's own security notice: anyone else's is a missing page, admins' too.
    "notices:read": Route(
        notice_id,
        Who.MEMBER,
        {
            Who.ANONYMOUS: Refusal.LOGIN,
            Who.STRANGER: Refusal.NOT_FOUND,
            Who.FACILITATOR: Refusal.NOT_FOUND,
            Who.ADMIN: Refusal.NOT_FOUND,
        },
        "post",
    ),
}

# Whole namespaces covered by a test of their own, and why.
EXEMPT_NAMESPACES = {
    "admin": "Django's admin: every route of it, unnamed ones too, is requested by each "
    "outsider in test_every_admin_route_refuses_everyone_but_verified_staff.",
}


# --- walking the URLconf -----------------------------------------------------------------------


def every_url_name(patterns=None, namespace: str = "") -> list[str]:
    """The name of every URL pattern, included apps too ("groups:detail"); an unnamed
    pattern is listed by its route, so it cannot be tabled and fails the walk."""
    names = []
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            names += every_url_name(pattern.url_patterns, inner)
        elif isinstance(pattern, URLPattern):
            names.append(f"{namespace}{pattern.name or f'<{pattern.pattern}>'}")
    return names


def walked_names() -> list[str]:
    return [name for name in every_url_name() if name.split(":")[0] not in EXEMPT_NAMESPACES]


def test_every_url_pattern_has_a_row_and_every_row_a_pattern():
    walked = walked_names()
    missing = sorted(set(walked) - set(URLS))
    gone = sorted(set(URLS) - set(walked))
    assert not missing, f"URL patterns without an outsider case in URLS: {missing}"
    assert not gone, f"URLS names patterns that no longer exist: {gone}"


def login_url_for(path: str) -> str:
    return f"{reverse('account_login')}?next={path}"


def refusal_of(response, path: str) -> Refusal | None:  # noqa: ANN001
    if response.status_code == 302 and response["Location"].startswith(reverse("account_login")):
        return Refusal.LOGIN
    return {404: Refusal.NOT_FOUND, 403: Refusal.FORBIDDEN}.get(response.status_code)


ROUTES = sorted(name for name, row in URLS.items() if isinstance(row, Route))
PUBLIC = sorted(name for name, row in URLS.items() if isinstance(row, Public))


@pytest.mark.django_db
@pytest.mark.parametrize("name", ROUTES)
def test_every_route_refuses_its_outsiders(world, name):
    row = URLS[name]
    path = reverse(name, kwargs=row.kwargs(world))
    got = {}
    for who in row.refused:
        response = getattr(world.client(who), row.method)(path)
        got[who] = refusal_of(response, path) or f"HTTP {response.status_code}"
        if got[who] is Refusal.LOGIN:
            assert response["Location"] == login_url_for(path), response["Location"]
    assert got == row.refused, f"{row.method.upper()} {path}"

    # Someone gets through with the same kwargs: the outsiders' 404 is a refusal, not a typo.
    response = getattr(world.client(row.allowed), row.method)(path)
    assert refusal_of(response, path) is None and response.status_code < 400, (
        f"{row.allowed.value}: {row.method.upper()} {path} answered {response.status_code}"
    )


@pytest.mark.django_db
@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_page_answers_an_anonymous_visitor(world, name):
    path = reverse(name, kwargs=URLS[name].kwargs(world))
    response = Client().get(path)
    assert response.status_code < 400 or response.status_code == 405, (
        f"GET {path} answered {response.status_code}"
    )


# --- the admin ---------------------------------------------------------------------------------


def admin_routes(patterns=None, prefix: str = "") -> list[tuple[str, URLPattern]]:
    """(route as written, pattern) for every admin URL, the unnamed ones too."""
    found = []
    if patterns is None:
        patterns, prefix = admin.site.urls[0], reverse("admin:index").lstrip("/")
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            found += admin_routes(pattern.url_patterns, route)
        else:
            found.append((route, pattern))
    return found


def admin_path(route: str) -> str:
    """A concrete path for an admin route: sample ids, the first app label, any tail."""
    path = re.sub(r"\(\?P<app_label>(\w+)[^)]*\)", r"\1", route)  # (?P<app_label>auth|...)
    path = path.replace("(?P<url>.*)", "nowhere/").replace("^", "").replace("$", "")
    return "/" + re.sub(r"<(?:\w+:)?\w+>", "1", path)  # <path:object_id>, <id>


@pytest.mark.django_db
def test_every_admin_route_refuses_everyone_but_verified_staff(world):
    """Every admin URL, unnamed ones too, refuses everyone but 2FA-verified staff: a 404,
    or a redirect to the admin's login page, which answers a signed-in person with a 404
    and sends anyone else to our own sign-in page (both checked below); staff whose session
    skipped the second factor are sent to set it up. (Signing out of the admin is a POST; a
    GET only goes back to the admin's index, itself refused.)"""
    clients = {who: world.client(who) for who in Who if who is not Who.ADMIN}
    logins = (reverse("account_login"), reverse("admin:login"))
    elsewhere = (*logins, reverse("account_two_factor_setup"))
    wrong = []
    routes = admin_routes()
    assert len(routes) > 20  # the walk found the admin
    for route, _pattern in routes:
        path = admin_path(route)
        assert resolve(path).route == route.replace("^", ""), (route, path)
        for who, client in clients.items():
            response = client.get(path)
            location = response.get("Location", "")
            refused = response.status_code == 404 or (
                response.status_code == 302
                and (
                    location.startswith(elsewhere)
                    or (path == reverse("admin:logout") and location == reverse("admin:index"))
                )
            )
            if not refused:
                wrong.append(
                    f"{who.name} GET {path}: {response.status_code} {response.get('Location')}"
                )
    assert not wrong, "\n".join(wrong)

    admin_login = reverse("admin:login")
    assert clients[Who.ANONYMOUS].get(admin_login)["Location"].startswith(logins[0])
    for who, client in clients.items():
        if who not in (Who.ANONYMOUS, Who.UNVERIFIED_ADMIN):
            assert client.get(admin_login).status_code == 404, who


@pytest.mark.django_db
def test_the_admin_opens_for_verified_staff(world):
    assert world.client(Who.ADMIN).get(reverse("admin:index")).status_code == 200


# --- websocket routes --------------------------------------------------------------------------

# Close codes that mean "not for you" (meetings/PROTOCOL.md): signed out, not allowed.
REFUSAL_CLOSE_CODES = {4001, 4003}


async def assert_socket_refused(communicator: WebsocketCommunicator) -> None:
    """The socket is accepted only to say why: one `refused` frame with a reason and words,
    then a close with a refusal code (PROTOCOL.md, "Joining"). Nothing else reaches an
    outsider, and a client that was told this way does not retry."""
    connected, code = await communicator.connect(timeout=5)
    assert connected, f"refused before accepting (close {code}): the client would never learn why"
    output = await communicator.receive_output(timeout=2)
    assert output["type"] == "websocket.send", output
    frame = json.loads(output["text"])
    assert frame["type"] == "refused" and frame["reason"] and frame["message"], frame
    output = await communicator.receive_output(timeout=2)
    assert output["type"] == "websocket.close", f"an outsider's socket got {output}"
    assert output.get("code") in REFUSAL_CLOSE_CODES, output


async def assert_socket_not_routed(communicator: WebsocketCommunicator) -> None:
    """A path no route takes is refused at the handshake, quietly (no 500, no traceback)."""
    connected, _ = await communicator.connect(timeout=5)
    assert not connected


@dataclass(frozen=True)
class SocketRoute:
    path: Callable[[World], str]
    allowed: Who | None  # None: nobody (the catch-all for unknown paths)
    refused: tuple[Who, ...]


SOCKETS: dict[str, SocketRoute] = {
    "ws/account/": SocketRoute(
        lambda world: "/ws/account/",
        Who.STRANGER,
        # A facilitator's or admin's session must have passed the second factor.
        (Who.ANONYMOUS, Who.UNVERIFIED_ADMIN),
    ),
    "ws/meetings/<int:meeting_id>/": SocketRoute(
        lambda world: f"/ws/meetings/{world.meeting.pk}/",
        Who.MEMBER,
        (Who.ANONYMOUS, Who.STRANGER, Who.OTHER_FACILITATOR, Who.UNVERIFIED_ADMIN),
    ),
    # A group's board and one of its threads: the board pages' door (every outsider of the
    # issue, the unverified facilitator too: tests/board/test_board_socket.py).
    "ws/groups/<slug:slug>/board/": SocketRoute(
        lambda world: f"/ws/groups/{world.group.slug}/board/",
        Who.MEMBER,
        (Who.ANONYMOUS, Who.STRANGER, Who.OTHER_FACILITATOR, Who.UNVERIFIED_ADMIN),
    ),
    "ws/groups/<slug:slug>/board/<int:number>/": SocketRoute(
        lambda world: f"/ws/groups/{world.group.slug}/board/{world.thread.number}/",
        Who.MEMBER,
        (Who.ANONYMOUS, Who.STRANGER, Who.OTHER_FACILITATOR, Who.UNVERIFIED_ADMIN),
    ),
    # The catch-all after every route: /ws/meetings/-1/, /ws/nothing/ and the like.
    "": SocketRoute(
        lambda world: "/ws/meetings/-1/",
        None,
        (Who.ANONYMOUS, Who.MEMBER, Who.ADMIN),
    ),
}

# Routes only present with BENCHMARK_ENDPOINTS (never in production).
EXEMPT_SOCKETS = {"ws/bench/echo/<slug:room>/": "make bench's echo baseline, off in production"}


def test_every_websocket_route_has_a_row_and_every_row_a_route():
    routes = {str(pattern.pattern) for pattern in websocket_urlpatterns} - set(EXEMPT_SOCKETS)
    assert routes - set(SOCKETS) == set(), "websocket routes without an outsider case"
    assert set(SOCKETS) - routes == set(), "SOCKETS names routes that no longer exist"


def session_cookie(world: World, who: Who) -> str | None:
    from django.conf import settings

    client = world.client(who)
    morsel = client.cookies.get(settings.SESSION_COOKIE_NAME)
    return morsel.value if morsel else None


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_worker_connections")
@pytest.mark.parametrize("route", sorted(SOCKETS))
async def test_every_websocket_route_refuses_its_outsiders(route):
    world = await run(build_world)
    row = SOCKETS[route]
    path = row.path(world)
    for who in row.refused:
        cookie = await run(session_cookie, world, who)
        communicator = WebsocketCommunicator(asgi_application, path, headers=socket_headers(cookie))
        try:
            if row.allowed is None:
                await assert_socket_not_routed(communicator)
            else:
                await assert_socket_refused(communicator)
        finally:
            await communicator.disconnect()

    if row.allowed is None:
        return
    cookie = await run(session_cookie, world, row.allowed)
    communicator = WebsocketCommunicator(asgi_application, path, headers=socket_headers(cookie))
    try:
        connected, _ = await communicator.connect(timeout=5)
        assert connected, f"{row.allowed.value} could not open {path}"
    finally:
        await communicator.disconnect()
