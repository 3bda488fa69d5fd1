"""The frame of every page (base.html) reads its static addresses and its navigation's
links from a per-process memory (supportgroups/templatetags/frame.py) instead of working
them out on every request (issue 22: the fixed cost of a page). Pages must not change:
each is compared with the page drawn by base.html with Django's own ``{% static %}`` and
``{% url %}`` in their place, for a visitor, a member, a facilitator and an admin."""

import re
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.templatetags.static import static
from django.test import Client, override_settings
from django.urls import path, reverse

from supportgroups.templatetags.frame import frame_static, frame_url
from tests.factories import appoint, give_place, make_group, make_person, signed_in_client
from tests.html import without_random_tokens

pytestmark = pytest.mark.django_db

BASE = Path(django_settings.BASE_DIR) / "templates" / "base.html"


def base_with_djangos_tags() -> str:
    text = BASE.read_text()
    assert "{% load frame l10n %}" in text
    text = text.replace("{% load frame l10n %}", "{% load static l10n %}")
    text = re.sub(r"\{% frame_static ('[^']+') %\}", r"{% static \1 %}", text)
    return re.sub(r"\{% frame_url ('[^']+') %\}", r"{% url \1 %}", text)


def reference_templates(settings) -> list[dict]:
    engine = dict(settings.TEMPLATES[0])
    options = {key: value for key, value in engine["OPTIONS"].items() if key != "loaders"}
    options["loaders"] = [
        ("django.template.loaders.locmem.Loader", {"base.html": base_with_djangos_tags()}),
        "django.template.loaders.filesystem.Loader",
        "django.template.loaders.app_directories.Loader",
    ]
    return [{**engine, "APP_DIRS": False, "OPTIONS": options}]


def test_every_kind_of_visitor_sees_the_frame_django_s_tags_draw(settings):
    admin = make_person("frame-admin", staff=True)
    group = make_group(admin, "Frame Circle")
    member = make_person("frame-member")
    give_place(group, member, "Wren", actor=admin)
    facilitator = make_person("frame-facilitator")
    appoint(group, facilitator, "Lantern", actor=admin)
    visits = [
        (Client(), reverse("home")),
        (signed_in_client(member), reverse("groups:mine")),
        (signed_in_client(facilitator), reverse("moderation:dashboard")),
        (signed_in_client(admin), reverse("groups:directory")),
    ]
    for client, url in visits:
        drawn = client.get(url)
        assert drawn.status_code == 200, url
        with override_settings(TEMPLATES=reference_templates(settings)):
            reference = client.get(url)
        assert without_random_tokens(drawn.content) == without_random_tokens(reference.content)
        assert "/static/" in drawn.content.decode()


def _elsewhere(request):  # noqa: ANN001, ANN202
    return None


# A URL configuration of its own for the test below: "home" somewhere else.
urlpatterns = [path("elsewhere/", _elsewhere, name="home")]


def test_a_setting_the_addresses_come_from_changes_them_within_one_process():
    # Asked once under the project's settings, then under others in the same process
    # (as tests do; a deployment's settings don't change while it runs).
    assert frame_static("css/site.css") == static("css/site.css")
    assert frame_url("home") == reverse("home") == "/"
    with override_settings(STATIC_URL="/assets/"):
        assert frame_static("css/site.css") == static("css/site.css")
        assert frame_static("css/site.css").startswith("/assets/")
    assert frame_static("css/site.css") == static("css/site.css")
    # The manifest storage gives the hashed names, and the plain ones under DEBUG.
    with override_settings(DEBUG=True):
        assert frame_static("css/site.css") == static("css/site.css") == "/static/css/site.css"
    assert frame_static("css/site.css") == static("css/site.css") != "/static/css/site.css"
    with override_settings(ROOT_URLCONF=__name__):
        assert frame_url("home") == "/elsewhere/"
    assert frame_url("home") == "/"
