"""Issue 21's everyday stumbles that the server decides: "just now", the 2FA code field,
the confirmation list, the error summary, times labelled with their zone, and the group's
rhythm saying whose clock it is."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.messages import constants
from django.template import Context, Template
from django.test import Client
from django.utils import timezone

from accounts.forms import TwoFactorCodeForm
from groups.models import Group
from tests.factories import make_group, make_person, signed_in_client

pytestmark = pytest.mark.django_db


def render(source: str, **context) -> str:
    return Template("{% load when %}" + source).render(Context(context))


def test_a_moment_ago_is_just_now_not_zero_minutes():
    now = timezone.now()
    assert render("{{ t|ago }}", t=now) == "just now"
    assert render("{{ t|ago }}", t=now - timedelta(seconds=59)) == "just now"
    assert render("{{ t|ago }}", t=now - timedelta(minutes=5)) == "5\xa0minutes ago"


def test_the_sessions_page_says_just_now_for_this_browser():
    person = make_person("quiet-otter")
    page = signed_in_client(person).get("/account/sessions/").content.decode()
    assert "just now" in page
    assert "0\xa0minutes ago" not in page and "0 minutes ago" not in page


def test_a_time_carries_its_utc_instant_and_says_utc_until_the_browser_localises_it():
    moment = datetime(2026, 3, 3, 19, 5, 9, tzinfo=UTC)
    html = render("{% when t %}", t=moment)
    assert html == (
        '<time datetime="2026-03-03T19:05:09Z" title="2026-03-03 19:05:09 UTC" data-local>'
        "Tue 03 Mar 2026, 19:05 UTC</time>"
    )
    assert "data-time-only>19:05 UTC</time>" in render('{% when t "time" %}', t=moment)


def test_the_two_factor_code_field_offers_the_number_pad_and_the_code_autofill():
    html = str(TwoFactorCodeForm()["code"])
    assert 'inputmode="numeric"' in html and 'autocomplete="one-time-code"' in html
    # A backup code has letters: its field must not force the number pad.
    backup = str(TwoFactorCodeForm(backup=True)["code"])
    assert 'inputmode="text"' in backup and "one-time-code" not in backup


def test_confirmations_are_a_list_inside_a_live_region_not_a_list_that_is_one():
    person = make_person("quiet-otter")
    client = signed_in_client(person)
    client.post("/account/sessions/", {"end": "others"})
    page = client.get("/account/sessions/").content.decode()
    assert "You are signed out everywhere else." in page
    assert re.search(r'<div role="status"><ul class="messages">\s*<li class="message', page)
    assert '<ul class="messages" role="status">' not in page
    assert constants.SUCCESS  # the message above is a success confirmation


def test_a_failed_form_opens_with_an_error_summary_and_says_error_in_the_title():
    response = Client().post("/accounts/login/", {"login": "", "password": ""})
    page = response.content.decode()
    assert re.search(r"<title>Error: ", page), page[:500]
    summary = re.search(
        r'<div class="error-summary"[^>]*data-error-summary[^>]*>(.*?)</div>', page, re.S
    )
    assert summary, "no error summary"
    assert 'tabindex="-1"' in page and "There is a problem" in summary.group(1)
    assert 'href="#id_login"' in summary.group(1)


def test_a_good_page_has_no_error_prefix_or_summary():
    page = Client().get("/accounts/login/").content.decode()
    assert "<title>Error: " not in page and "data-error-summary" not in page


def test_the_rhythm_says_whose_time_it_is():
    admin = make_person("night-heron", staff=True)
    group = make_group(admin, meeting_rhythm="Tuesdays, 7–8:30 pm")
    Group.objects.filter(pk=group.pk).update(meeting_time_zone="Europe/London")
    page = signed_in_client(admin).get("/groups/").content.decode()
    assert 'Tuesdays, 7–8:30 pm <span class="rhythm-zone">(Europe/London time)</span>' in page
