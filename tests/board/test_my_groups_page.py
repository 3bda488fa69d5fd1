# ruff: noqa: E501 - the reference is the template as it was, one line per line
"""'My groups' draws its rows from values the view reads once (issue 22 point 2: a person
in 100 groups paid more per row to draw than to load). The page must not change: it is
compared with the page the template drew before, with its lookups through the membership
and its group, for a person whose places are in every state a row shows."""

import pytest
from django.test import override_settings
from django.urls import reverse

from board import services
from groups import services as group_services
from tests.board.conftest import appoint, give_place, make_group, make_person, signed_in_client
from tests.html import without_random_tokens

pytestmark = pytest.mark.django_db

# groups/mine.html before the view read each row's values (its view also gave it
# ``groups_root``, which the reference now reverses itself: ``{% url … as %}`` draws nothing).
REFERENCE_MINE = """{% extends "base.html" %}{% load board_tags %}
{% block title %}My groups · {{ SITE_NAME }}{% endblock %}
{% block content %}{% url 'groups:directory' as groups_root %}
{% comment %}Each row's links are built on the groups' own address ("groups_root", /groups/), without a reverse() per row: a member of many groups pays per row only for what the row shows.{% endcomment %}
<h1>My groups</h1>
{% if memberships %}
  <ul class="group-list">
  {% for m in memberships|with_board_unread %}
    <li class="card">
      <h2><a href="{{ groups_root }}{{ m.group.slug }}/home/">{{ m.group.name }}</a></h2>
      <p>Your name here: <strong>{{ m.pseudonym|default:"not chosen yet" }}</strong>
        {% if m.role == "facilitator" %} · facilitator{% endif %} · {{ m.get_status_display }}</p>
      {% if not m.pseudonym %}
        <p><a class="button" href="{{ groups_root }}{{ m.group.slug }}/join/">Choose your name and sign the agreement</a></p>
      {% elif not m.signed_current or m.status == "pending_agreement" %}
        <p class="notice"><strong>Please sign the new agreement</strong> before your next meeting.
          <a href="{{ groups_root }}{{ m.group.slug }}/agreement/sign/">Read and sign it</a></p>
      {% endif %}
      {% if m.board_unread is not None %}<p class="board-unread"><a href="{{ groups_root }}{{ m.group.slug }}/board/">Board</a>{% if m.board_unread %}: <strong>{{ m.board_unread }} new post{{ m.board_unread|pluralize }}</strong>{% else %}: nothing new{% endif %}</p>{% endif %}
      {% if m.role == "facilitator" %}<p><a href="{{ groups_root }}{{ m.group.slug }}/manage/">Manage this group</a></p>{% endif %}
    </li>
  {% endfor %}
  </ul>
{% else %}
  <p>You are not in any group yet. <a href="{% url 'groups:directory' %}">Find a group</a>.</p>
{% endif %}
{% endblock %}
"""


def with_reference_template(settings) -> dict:
    engine = dict(settings.TEMPLATES[0])
    options = {key: value for key, value in engine["OPTIONS"].items() if key != "loaders"}
    options["loaders"] = [
        ("django.template.loaders.locmem.Loader", {"groups/mine.html": REFERENCE_MINE}),
        "django.template.loaders.filesystem.Loader",
        "django.template.loaders.app_directories.Loader",
    ]
    return [{**engine, "APP_DIRS": False, "OPTIONS": options}]


def test_my_groups_is_the_page_it_was_for_every_kind_of_row(scene, settings):
    person = scene.birch.user  # a member with a name, signed (scene.group)
    admin = scene.admin
    # Facilitator of another group.
    appoint(scene.other_group, person, "Willow", actor=admin)
    # A place without a name yet.
    give_place(make_group(admin, "Afternoon Circle"), person)
    # A place with a new agreement to sign (and a board closed to them meanwhile).
    signing = make_group(admin, "Night Owls")
    host = appoint(signing, make_person("host-owl"), "Owl", actor=admin)
    give_place(signing, person, "Moth")
    group_services.agreement_publish(group=signing, actor=host.user, text="Version two.")
    # Unread posts on one board (1 and then 2: "post" and "posts").
    services.thread_start(actor=scene.ash.user, group=scene.group, title="One", body="x")
    client = signed_in_client(person)
    url = reverse("groups:mine")

    pages = []
    for more_posts in (0, 1):
        if more_posts:
            services.thread_start(actor=scene.ash.user, group=scene.group, title="Two", body="y")
        drawn = without_random_tokens(client.get(url).content)
        with override_settings(TEMPLATES=with_reference_template(settings)):
            reference = without_random_tokens(client.get(url).content)
        assert drawn == reference
        pages.append(drawn)
    first, second = pages
    for text in (
        "· facilitator",
        "Choose your name",
        "Please sign the new agreement",
        "1 new post<",
        "Manage this group",
    ):
        assert text in first
    assert "2 new posts" in second
