"""Issue 18, point 11: what Redis, the cookies, the mail and the server log hold, and the
database's copy of pinned announcements and private links, read as an attacker would."""

import hashlib
import logging
from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.test import Client
from django.utils import timezone

from groups import services as group_services
from groups.models import Group
from meetings import services as meeting_services
from moderation import services as moderation_services
from tests.accounts.conftest import PASSWORD, new_client
from tests.database import dump_every_table
from tests.screening.conftest import make_group, sign_in

pytestmark = pytest.mark.django_db


def attempt(client, handle, password, **request):
    """The login form, posted with ``request`` as the request's own META (address, Host)."""
    return client.post("/accounts/login/", {"login": handle, "password": password}, **request)


CLIENT_IP = "198.51.100.77"
EMAIL = "robin.private@mail.test"


def everything_in_redis() -> str:
    """Every key and every value (whatever its type) in the cache's Redis, as text."""
    if not settings.REDIS_URL:
        pytest.skip("needs Redis (make test)")
    client = redis.Redis.from_url(settings.REDIS_URL)
    lines = []
    for key in client.scan_iter(count=1000):
        kind = client.type(key).decode()
        if kind == "string":
            value = client.get(key)
        elif kind == "list":
            value = b"|".join(client.lrange(key, 0, -1))
        elif kind == "hash":
            value = b"|".join(k + b"=" + v for k, v in client.hgetall(key).items())
        elif kind == "set":
            value = b"|".join(client.smembers(key))
        elif kind == "zset":
            value = b"|".join(client.zrange(key, 0, -1))
        else:
            value = b""
        lines.append(key.decode(errors="replace") + " " + value.decode("latin-1"))
    return "\n".join(lines)


def test_redis_holds_no_client_address_and_no_guessable_email_hash(owner):
    owner.set_recovery_email(EMAIL)
    owner.recovery_email_verified = True
    owner.save()

    attempt(new_client(), owner.username, "wrong password", REMOTE_ADDR=CLIENT_IP)
    new_client().post("/accounts/password/reset/", {"email": EMAIL}, REMOTE_ADDR=CLIENT_IP)
    new_client().post(
        "/accounts/password/reset/backup-code/",
        {
            "handle": owner.username,
            "code": "abcde-fghjk",
            "password1": "x" * 14,
            "password2": "x" * 14,
        },
        REMOTE_ADDR=CLIENT_IP,
    )
    text = everything_in_redis()

    assert "allauth" in text  # the rate limits did write there
    assert CLIENT_IP not in text
    for spelling in (EMAIL, EMAIL.lower()):
        assert spelling not in text
        assert hashlib.sha256(spelling.encode()).hexdigest() not in text
    for handle in (owner.username, f"testserver:{owner.username}"):
        assert hashlib.sha256(handle.encode()).hexdigest() not in text


def test_messages_wait_in_the_session_not_in_a_cookie_and_never_name_the_handle(owner):
    client = new_client()

    response = attempt(client, owner.username, PASSWORD)

    assert "messages" not in response.cookies
    page = client.get("/groups/mine/")
    assert "You are signed in." in page.content.decode()
    assert owner.username not in page.content.decode()
    assert not any("messages" in name for name in client.cookies)


def test_the_safety_concern_email_names_no_group(
    world, mailoutbox, django_capture_on_commit_callbacks
):
    facilitator = world.facilitator.user
    facilitator.set_recovery_email("lantern@mail.test")
    facilitator.recovery_email_verified = True
    facilitator.save()

    with django_capture_on_commit_callbacks(execute=True):
        moderation_services.safety_flag_raise(
            actor=world.member.user, group=world.group, about=None
        )

    (mail,) = mailoutbox
    assert f"{settings.SITE_URL}/moderation/\n" in mail.body
    for secret in (world.group.slug, world.group.name, "Quiet Fox"):
        assert secret not in mail.subject + mail.body


def test_pinned_announcements_and_private_links_are_not_in_the_database_in_clear(world):
    hidden = make_group(world.admin, "Hidden Harbour", listed=False)
    starts = timezone.now() - timedelta(minutes=5)
    (meeting,) = meeting_services.meeting_schedule(
        group=world.group,
        actor=world.facilitator.user,
        title="Now",
        starts_at=starts,
        ends_at=starts + timedelta(hours=1),
    )
    moderation_services.announcement_pin(
        meeting=meeting, actor=world.facilitator.user, text="Break at 8, back at ten past."
    )

    text = dump_every_table()

    assert "Break at 8, back at ten past." not in text
    assert hidden.link_token and hidden.link_token not in text
    # Still reachable through the link, and only through it.
    assert Client().get(f"/groups/link/{hidden.link_token}/").status_code == 200
    assert Client().get(f"/groups/link/{hidden.link_token[:-1]}x/").status_code == 404
    old = hidden.link_token
    group_services.group_link_reset(group=hidden, actor=world.admin)
    assert Client().get(f"/groups/link/{old}/").status_code == 404
    assert (
        Client().get(f"/groups/link/{Group.objects.get(pk=hidden.pk).link_token}/").status_code
        == 200
    )


def test_the_log_does_not_name_an_unlisted_group(world, caplog):
    hidden = make_group(world.admin, "Hidden Harbour", listed=False)
    client = sign_in(world.applicant)

    with caplog.at_level(logging.WARNING, logger="django.request"):
        assert client.get(f"/groups/{hidden.slug}/").status_code == 404
        assert client.get(f"/moderation/{hidden.slug}/").status_code == 404
        assert client.get(f"/groups/{world.group.slug}/nothing-here/").status_code == 404
        assert client.get(f"/groups/link/{hidden.link_token}x/").status_code == 404

    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "Not Found" in logged
    assert hidden.slug not in logged
    assert "/groups/<unlisted>/" in logged
    assert hidden.link_token not in logged and "/groups/link/<secret>/" in logged
    # A listed group is public: its lines stay readable.
    assert f"/groups/{world.group.slug}/nothing-here/" in logged
