"""Issue 18, "Input": facilitator-written help text is text (12); a NUL byte is bad input,
never a server error (13)."""

import pytest
from django.conf import settings
from django.test import Client

from screening import services
from tests.screening.conftest import sign_in

pytestmark = pytest.mark.django_db

REFRESH = '<meta http-equiv="refresh" content="0;url=https://elsewhere.example/">'


def test_it_renders_a_questions_help_text_as_text_on_the_apply_page(world):
    services.questionnaire_publish(
        group=world.group,
        actor=world.facilitator.user,
        questions=[{"kind": "long_text", "text": "Why this group?", "help_text": REFRESH}],
    )
    client = sign_in(world.applicant)

    page = client.get(f"/screening/apply/{world.group.slug}/").content.decode()

    assert REFRESH not in page
    assert "&lt;meta http-equiv=&quot;refresh&quot;" in page


@pytest.mark.parametrize(
    "path",
    [
        "/groups/?q=a%00b",
        "/groups/?topic=grief%00",
        "/groups/link/a%00b/",
        "/groups/invitation/a%00b/",
        "/groups/a%00b/",
        "/screening/apply/a%00b/",
        "/account/email/verify/a%00b/",
        "/accounts/password/reset/key/1-a%00b/",
        "/audit/?action=a%00b",
    ],
)
def test_it_answers_400_to_a_nul_in_the_address(path, world):
    client = sign_in(world.applicant)

    response = client.get(path)

    assert response.status_code == 400
    assert "We couldn't read that request" in response.content.decode()
    assert "Leave quickly" in response.content.decode()


def test_it_answers_400_to_a_nul_in_a_raw_form_field(world):
    client = sign_in(world.applicant)

    response = client.post(f"/screening/apply/{world.group.slug}/", {"link": "a\x00b"})

    assert response.status_code == 400


def test_it_answers_400_to_a_nul_in_the_session_cookie(db):
    # A quoted cookie value may spell a NUL as an octal escape.
    cookie = f'{settings.SESSION_COOKIE_NAME}="abcdefgh\\000ijklmnop"'

    assert Client().get("/", HTTP_COOKIE=cookie).status_code == 400


def test_it_still_serves_ordinary_requests(world):
    assert Client().get("/groups/?q=grief").status_code == 200
