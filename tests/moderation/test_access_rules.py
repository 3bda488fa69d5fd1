"""Who may do what: every /moderation/ URL and every moderation frame of the room, tried by
the wrong people. Outsiders get a 404 (never a 403, which would confirm that the group or
the member exists); anonymous visitors are sent to sign in; facilitators without a
2FA-verified session are sent to set it up (or to sign in again) before anything else."""

import pytest
from django.test import Client

from audit.events import Action
from groups import services as group_services
from groups.models import Status
from meetings.models import Meeting
from moderation import services
from moderation.models import Announcement, ModerationAction, Report, SafetyFlag
from tests.moderation.conftest import (
    CLOSE_NOT_ALLOWED,
    TWO_FACTOR_SET_UP,
    Socket,
    events,
    facilitator_cookie,
    fresh,
    member_client,
    member_cookie,
    run,
    verified_client,
)

REASON = "A written reason long enough to pass the check."


@pytest.fixture
def things(world):
    report = services.report_file(
        actor=world.river.user, message=world.fern_message, guideline_number=2
    )
    flag = services.safety_flag_raise(
        actor=world.river.user, group=world.river.group, about=world.fern
    )
    return report, flag


def facilitator_urls(world, report, flag):
    """(method, url, POST data) for every facilitator-only endpoint."""
    slug, member = world.slug, world.fern.pk
    return [
        ("get", "/moderation/", None),
        ("get", f"/moderation/{slug}/", None),
        ("get", f"/moderation/{slug}/members/", None),
        ("get", f"/moderation/{slug}/log/", None),
        ("get", f"/moderation/{slug}/members/{member}/", None),
        (
            "post",
            f"/moderation/{slug}/members/{member}/",
            {"kind": "remove", "guideline": "1", "reason": "", "duration": ""},
        ),
        ("get", f"/moderation/{slug}/members/{member}/reveal/", None),
        (
            "post",
            f"/moderation/{slug}/members/{member}/reveal/",
            {"reason": REASON, "confirm": "on"},
        ),
        ("get", f"/moderation/{slug}/reports/{report.pk}/", None),
        (
            "post",
            f"/moderation/{slug}/reports/{report.pk}/",
            {"action": "mute", "note": "", "duration": ""},
        ),
        ("post", f"/moderation/{slug}/flags/{flag.pk}/handled/", {"note": "done"}),
    ]


def assert_nothing_changed(world, report, flag):
    assert fresh(world.fern).status == Status.ACTIVE
    assert fresh(report).status == Report.Status.OPEN
    assert fresh(report).message_body is not None
    assert fresh(flag).status == SafetyFlag.Status.OPEN
    assert not ModerationAction.objects.exists()
    assert events(Action.CONTACT_DETAILS_REVEALED) == []
    assert events(Action.MODERATION_ACTION_TAKEN) == []


def request(client, method, url, data):
    return client.get(url) if method == "get" else client.post(url, data)


def people(world):
    """The wrong people, each with a signed-in client (or none)."""
    return {
        "member": member_client(world.river.user),
        "member-of-another-group": member_client(world.stranger.user),
        # Beacon: a verified facilitator, of another group (a plain member of this one).
        "facilitator-of-another-group": verified_client(world.other_facilitator.user),
    }


# --- pages ------------------------------------------------------------------------------------


def test_outsiders_get_404_from_every_facilitator_page(world, things):
    report, flag = things
    for who, client in people(world).items():
        for method, url, data in facilitator_urls(world, report, flag):
            if who == "facilitator-of-another-group" and url == "/moderation/":
                # Their own combined view, without this group in it.
                combined = client.get(url).content.decode()
                assert "Morning Recovery Circle" in combined
                assert "Evening Grief Circle" not in combined
                continue
            response = request(client, method, url, data)
            assert response.status_code == 404, (who, method, url, response.status_code)
            assert "Fern" not in response.content.decode()
    assert_nothing_changed(world, report, flag)


def test_anonymous_visitors_are_sent_to_sign_in(world, things):
    report, flag = things
    client = Client()
    for method, url, data in facilitator_urls(world, report, flag) + [
        ("get", "/moderation/about-me/", None),
        ("get", f"/moderation/{world.slug}/safety/", None),
        ("post", f"/moderation/{world.slug}/safety/", {"about": str(world.fern.pk)}),
    ]:
        response = request(client, method, url, data)
        assert response.status_code == 302, (method, url)
        assert response["Location"].startswith("/accounts/login/"), (method, url)
    assert_nothing_changed(world, report, flag)
    assert SafetyFlag.objects.count() == 1


def test_a_facilitator_without_2fa_is_sent_to_set_it_up_first(
    world, things, unverified_facilitator
):
    report, flag = things
    client = member_client(unverified_facilitator.user)
    for method, url, data in facilitator_urls(world, report, flag) + [
        ("get", "/moderation/about-me/", None),
        ("get", f"/moderation/{world.slug}/safety/", None),
    ]:
        response = request(client, method, url, data)
        assert response.status_code == 302, (method, url)
        assert response["Location"] == TWO_FACTOR_SET_UP, (method, url)
    assert_nothing_changed(world, report, flag)


def test_a_facilitator_session_not_verified_by_the_second_factor_is_ended(world, things):
    """Lantern has an authenticator, but this session skipped the code step."""
    report, flag = things
    for method, url, data in facilitator_urls(world, report, flag):
        client = member_client(world.facilitator.user)
        response = request(client, method, url, data)
        assert response.status_code == 302, (method, url)
        assert response["Location"] == "/accounts/login/", (method, url)
    assert_nothing_changed(world, report, flag)


def test_a_facilitator_cannot_reach_another_groups_members_reports_or_flags(world, things):
    """Beacon facilitates the other group: through its slug, ids from this group are 404."""
    report, flag = things
    client = verified_client(world.other_facilitator.user)
    other = world.other_group.slug
    assert client.get(f"/moderation/{other}/").status_code == 200
    for method, url, data in [
        ("get", f"/moderation/{other}/members/{world.fern.pk}/", None),
        (
            "post",
            f"/moderation/{other}/members/{world.fern.pk}/",
            {"kind": "remove", "guideline": "1", "reason": "", "duration": ""},
        ),
        ("get", f"/moderation/{other}/members/{world.river.pk}/reveal/", None),
        (
            "post",
            f"/moderation/{other}/members/{world.river.pk}/reveal/",
            {"reason": REASON, "confirm": "on"},
        ),
        ("get", f"/moderation/{other}/reports/{report.pk}/", None),
        (
            "post",
            f"/moderation/{other}/reports/{report.pk}/",
            {"action": "mute", "note": "", "duration": ""},
        ),
        ("post", f"/moderation/{other}/flags/{flag.pk}/handled/", {"note": ""}),
    ]:
        response = request(client, method, url, data)
        assert response.status_code == 404, (method, url)
    assert_nothing_changed(world, report, flag)


def test_only_members_of_the_group_may_raise_a_concern_in_it(world):
    url = f"/moderation/{world.slug}/safety/"
    stranger = member_client(world.stranger.user)
    assert stranger.get(url).status_code == 404
    assert stranger.post(url, {"about": str(world.fern.pk), "note": ""}).status_code == 404
    removed = member_client(world.fern.user)
    services.action_take(
        membership=world.fern, actor=world.facilitator.user, kind="remove", guideline_number=1
    )
    assert removed.get(url).status_code == 404
    assert not SafetyFlag.objects.exists()
    assert member_client(world.river.user).get(url).status_code == 200


def test_about_me_is_for_anyone_signed_in_and_shows_only_their_own(world):
    services.action_take(
        membership=world.fern,
        actor=world.facilitator.user,
        kind="warn",
        guideline_number=1,
        reason="Only for Fern.",
    )
    assert (
        "Only for Fern."
        not in member_client(world.stranger.user).get("/moderation/about-me/").content.decode()
    )


def test_the_handled_endpoint_takes_posts_only(world, fac, things):
    report, flag = things
    response = fac.get(f"/moderation/{world.slug}/flags/{flag.pk}/handled/")
    assert response.status_code == 405
    assert fresh(flag).status == SafetyFlag.Status.OPEN


def test_a_demoted_facilitator_loses_the_pages_at_once(world, fac, things):
    report, flag = things
    assert fac.get(f"/moderation/{world.slug}/").status_code == 200
    group_services.facilitator_remove(membership=world.facilitator, actor=world.admin)
    for method, url, data in facilitator_urls(world, report, flag):
        response = request(fac, method, url, data)
        assert response.status_code == 404, (method, url)
    assert_nothing_changed(world, report, flag)


def test_the_services_recheck_the_role_whatever_the_caller_checked(world, things):
    report, flag = things
    for actor in (world.river.user, world.harbour.user, world.other_facilitator.user):
        with pytest.raises(services.ModerationError):
            services.action_take(
                membership=world.fern, actor=actor, kind="warn", guideline_number=1
            )
        with pytest.raises(services.ModerationError):
            services.message_hide(message=world.fern_message, actor=actor, guideline_number=1)
        with pytest.raises(services.ModerationError):
            services.report_resolve(report=report, actor=actor, action="none")
        with pytest.raises(services.ModerationError):
            services.safety_flag_handle(flag=flag, actor=actor)
        with pytest.raises(services.ModerationError):
            services.contact_reveal(membership=world.fern, actor=actor, reason=REASON)
        with pytest.raises(services.ModerationError):
            services.announcement_pin(meeting=world.meeting, actor=actor, text="Hi")
    assert_nothing_changed(world, report, flag)
    assert not Announcement.objects.exists()


# --- room frames ------------------------------------------------------------------------------

MODERATION_FRAMES = [
    {"type": "moderate", "action": "hide", "seq": 1, "guideline": 1, "reason": "x"},
    {"type": "moderate", "action": "mute", "seq": 1, "guideline": 1, "minutes": 10},
    {"type": "moderate", "action": "unmute", "seq": 1},
    {"type": "moderate", "action": "remove", "seq": 1, "guideline": 1},
    {"type": "announce", "text": "Everyone out!"},
    {"type": "close_room"},
]


async def assert_frames_refused(socket):
    for frame in MODERATION_FRAMES:
        await socket.send(frame)
        error = await socket.expect_error("moderation_refused")
        assert "facilitators" in error["message"], frame
    await socket.still_usable()


def assert_room_untouched(world):
    assert fresh(world.fern).status == Status.ACTIVE
    assert fresh(world.fern_message).hidden_at is None
    assert Meeting.objects.get(pk=world.meeting.pk).closed_at is None
    assert not Announcement.objects.exists()
    assert not ModerationAction.objects.exists()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_worker_connections")
async def test_members_moderation_frames_are_refused(world):
    async with (
        Socket(world.path, await member_cookie(world.river)) as river,
        Socket(world.path, await member_cookie(world.fern)) as fern,
    ):
        await assert_frames_refused(river)
        await fern.expect_quiet()  # nobody else heard anything
    await run(assert_room_untouched, world)


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_worker_connections")
async def test_a_facilitator_of_another_group_is_a_plain_member_here(world):
    async with Socket(world.path, await facilitator_cookie(world.harbour)) as harbour:
        assert harbour.connected and harbour.hello["you"]["is_facilitator"] is False
        await assert_frames_refused(harbour)
    await run(assert_room_untouched, world)


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_worker_connections")
async def test_a_facilitator_demoted_while_in_the_room_can_no_longer_moderate(world):
    async with Socket(world.path, await facilitator_cookie(world.facilitator)) as lantern:
        await run(
            group_services.facilitator_remove, membership=world.facilitator, actor=world.admin
        )
        await assert_frames_refused(lantern)
    await run(assert_room_untouched, world)


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_worker_connections")
async def test_facilitators_without_a_verified_session_and_outsiders_cannot_enter(
    world, unverified_facilitator
):
    cookies = {
        "unverified facilitator": await member_cookie(unverified_facilitator),
        "facilitator, code step skipped": await member_cookie(world.facilitator),
        "member of another group": await member_cookie(world.stranger),
        "facilitator of another group, code step skipped": await member_cookie(world.harbour),
        "anonymous": None,
    }
    for who, cookie in cookies.items():
        async with Socket(world.path, cookie) as socket:
            assert (socket.connected, socket.code) == (False, CLOSE_NOT_ALLOWED), who
