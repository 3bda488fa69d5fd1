# ruff: noqa: E501 - the reference row is the template as it was, one line per line
"""A thread's page draws each post with board/_post.html (50 a page; the live frames use
it too). Its links and time come from two cheap tags (board_tags ``post_url`` and
``post_time``) instead of ``{% url %}`` and two ``date`` filters per post (issue 20
point 5): what each post shows must not change. The reference is the row as it was
drawn before, with Django's own tags."""

from datetime import UTC, datetime

import pytest
from django.template import Context, Engine, Template
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from board.models import Post, Thread
from board.services import post_reply
from groups.models import Group
from moderation import services as moderation_services

pytestmark = pytest.mark.django_db

# board/_post.html before the cheap tags, for comparison.
REFERENCE_POST_ROW = """<li id="post-{{ post.number }}" class="board-post" data-post="{{ post.number }}">
  <p class="board-post__meta"><strong>{% if post.author %}{{ post.author.pseudonym }}{% else %}[removed]{% endif %}</strong> · <time datetime="{{ post.created_at|date:'c' }}" data-local>{{ post.created_at|date:"j M Y, H:i e" }}</time></p>
  {% if post.body is None %}<p class="muted board-post__removed">{{ post.removed_label }}</p>
  {% elif post.hidden_at %}<p class="muted board-post__hidden">Hidden by a facilitator.</p>
  {% else %}<div class="board-post__body">{{ post.body|linebreaks }}</div>{% endif %}
  {% if post.body is not None and not post.hidden_at %}
    {% if post.author_id == membership.pk %}<p><a href="{% url 'board:delete_post' group.slug thread.number post.number %}">Delete my post</a></p>
    {% elif post.author_id %}<p><a href="{% url 'moderation:report_post' group.slug thread.number post.number %}">Report this post</a>{% if membership.is_facilitator %} · <a href="{% url 'moderation:hide_post' group.slug thread.number post.number %}">Hide this post</a>{% endif %}</p>{% endif %}
  {% endif %}
</li>
"""


# board/_thread.html (a thread's row on the board's page) before the cheap tags.
REFERENCE_THREAD_ROW = """<li id="thread-{{ thread.number }}" data-thread="{{ thread.number }}"{% if thread.pinned %} data-pinned{% endif %}>
    <a href="{% url 'board:thread' group.slug thread.number %}">{% include "board/_title.html" %}</a>
    <span class="muted">— {% if thread.author %}{{ thread.author.pseudonym }}{% else %}[removed]{% endif %},
      {{ thread.last_post_number }} post{{ thread.last_post_number|pluralize }}, last <time datetime="{{ thread.last_post_at|date:'c' }}" data-local>{{ thread.last_post_at|date:"j M Y, H:i e" }}</time>{% if thread.pinned %} · pinned{% endif %}{% if thread.locked %} · locked{% endif %}{% if thread.closed %} · closed{% endif %}</span>
  </li>
"""


def both_rows(context: dict, name="board/_post.html", reference=REFERENCE_POST_ROW):
    reference = Engine.get_default().from_string(reference)
    return render_to_string(name, context), reference.render(Context(context))


@pytest.mark.parametrize("zone", ["UTC", "Europe/London", "America/St_Johns", "Asia/Kathmandu"])
def test_each_post_row_is_drawn_as_before_for_author_member_and_facilitator(scene, zone):
    thread = scene.start(scene.ash, body="First line.\n\nA <b>second</b> & more.")
    post_reply(actor=scene.birch.user, thread=thread, body="Me too.")
    hidden = post_reply(actor=scene.birch.user, thread=thread, body="Not kind.")
    moderation_services.post_hide(actor=scene.facilitator.user, post=hidden, guideline_number=1)
    # Times across the year (summer time on and off) and around midnight.
    for number, moment in zip(
        (1, 2),
        (
            datetime(2026, 1, 5, 23, 59, 30, 123456, tzinfo=UTC),
            datetime(2026, 7, 9, 0, 5, tzinfo=UTC),
        ),
        strict=True,
    ):
        Post.objects.filter(thread=thread, number=number).update(created_at=moment)
    posts = list(Post.objects.filter(thread=thread).select_related("author"))
    with timezone.override(zone):
        for reader in (scene.ash, scene.birch, scene.facilitator):
            for post in posts:
                context = {
                    "group": scene.group,
                    "thread": thread,
                    "membership": reader,
                    "post": post,
                }
                drawn, reference = both_rows(context)
                assert drawn == reference
    assert "/delete/" in render_to_string(
        "board/_post.html",
        {"group": scene.group, "thread": thread, "membership": scene.ash, "post": posts[0]},
    )


def test_a_post_link_is_the_address_django_reverses_for_every_thread(scene):
    thread = scene.start(scene.ash)
    other = scene.start(scene.birch, title="Another night")
    tag = Template('{% load board_tags %}{% post_url "report" %}|{% post_url "hide" %}')
    for on, post_number in ((thread, 1), (other, 1), (thread, 12), (other, 1000)):
        post = Post(thread=on, number=post_number)
        drawn = tag.render(Context({"group": scene.group, "thread": on, "post": post}))
        args = [scene.group.slug, on.number, post_number]
        assert drawn == (
            f"{reverse('moderation:report_post', args=args)}|"
            f"{reverse('moderation:hide_post', args=args)}"
        )


def test_a_post_link_is_right_whatever_numbers_the_slug_holds(scene):
    """The tag cuts a reversed address around a marker number: a slug that holds that
    number too must not break the page (it was a 500 for every post of that board)."""
    tag = Template('{% load board_tags %}{% post_url "delete" %}')
    group = Group(slug="night-987654321-line")
    thread = Thread(group=group, number=987654321)
    post = Post(thread=thread, number=4)
    drawn = tag.render(Context({"group": group, "thread": thread, "post": post}))
    assert drawn == reverse("board:delete_post", args=[group.slug, thread.number, 4])


@pytest.mark.parametrize("zone", ["UTC", "America/St_Johns"])
def test_each_thread_row_on_the_board_is_drawn_as_before(scene, zone):
    plain = scene.start(scene.ash, body="Hello.")
    post_reply(actor=scene.birch.user, thread=plain, body="Me too.")
    hidden = scene.start(scene.birch, title="Another night", body="Not kind.")
    first = Post.objects.get(thread=hidden, number=1)
    moderation_services.post_hide(actor=scene.facilitator.user, post=first, guideline_number=1)
    from board.models import Thread

    Thread.objects.filter(pk=plain.pk).update(
        pinned=True, locked=True, last_post_at=datetime(2026, 3, 29, 0, 59, tzinfo=UTC)
    )
    with timezone.override(zone):
        for thread in Thread.objects.filter(group=scene.group).select_related("author"):
            drawn, reference = both_rows(
                {"group": scene.group, "thread": thread, "membership": scene.ash},
                name="board/_thread.html",
                reference=REFERENCE_THREAD_ROW,
            )
            assert drawn == reference
            assert (
                f'href="{reverse("board:thread", args=[scene.group.slug, thread.number])}"' in drawn
            )
