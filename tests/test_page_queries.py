"""Issue 22: every page `make bench` times asks the database the same number of questions
at 10 rows as at 100 (the facilitator's dashboard, member list and moderation log are held
to it at 10 and 300 in tests/moderation/test_dashboard.py; the board's pages in
tests/board/test_board_queries.py). The rows grow as the bench's data do (bench/data.py):
a person's groups, a group's guidelines and upcoming meetings, applications waiting."""

import html
import re
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from groups import services as group_services
from groups.models import Group
from meetings import services as meeting_services
from meetings.models import Recurrence
from screening.models import Application
from screening.selectors import QUEUE_PAGE_SIZE
from tests.factories import (
    appoint,
    give_place,
    make_group,
    make_person,
    make_user,
    signed_in_client,
    submitted_application,
)

pytestmark = pytest.mark.django_db


@dataclass
class Scene:
    admin: object
    reader: object  # a member of many groups ("my groups")
    home: Group  # a group with many guidelines and upcoming meetings
    homebody: object
    host: object
    screened: Group  # a group with many applications waiting
    facilitator: object


@pytest.fixture
def scene() -> Scene:
    admin = make_person("page-keeper", staff=True)
    reader = make_user("page-reader")
    home = make_group(admin, "Home page group")
    homebody = make_user("page-homebody")
    give_place(home, homebody, "Homebody", actor=admin)
    host = appoint(home, make_user("page-host"), "Host", actor=admin).user
    screened = make_group(admin, "Screened group", requires_screening=True)
    facilitator = make_user("page-facilitator")
    appoint(screened, facilitator, "Steward", actor=admin)
    scene = Scene(admin, reader, home, homebody, host, screened, facilitator)
    grow(scene, 0, 10)
    return scene


def grow(scene: Scene, start: int, end: int) -> None:
    """Rows ``start`` to ``end`` of each kind, through the services."""
    for n in range(start, end):
        group = make_group(scene.admin, f"Shared group {n}")
        give_place(group, scene.reader, f"Reader {n}", actor=scene.admin)
        submitted_application(scene.screened, make_user(f"page-applicant-{n}"))
    group_services.guidelines_replace(
        group=scene.home, actor=scene.admin, rules=[f"Guideline number {n}" for n in range(end)]
    )
    meeting_services.meeting_schedule(
        group=scene.home,
        actor=scene.host,
        title=f"Weekly from {start}",
        starts_at=timezone.now() + timedelta(days=1 + 7 * start),
        ends_at=timezone.now() + timedelta(days=1 + 7 * start, hours=1),
        recurrence=Recurrence.WEEKLY,
        occurrences=end - start,
    )


def queries(client, url: str) -> tuple[int, str]:
    client.get(url)  # warm: per-process caches, the session's "last seen"
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured), response.content.decode()


@pytest.mark.parametrize("page", ["my_groups", "group_home", "review_queue"])
def test_the_same_number_of_queries_at_10_and_100_rows(scene, page):
    who, url = {
        "my_groups": (scene.reader, "/groups/mine/"),
        "group_home": (scene.homebody, f"/groups/{scene.home.slug}/home/"),
        "review_queue": (scene.facilitator, f"/screening/review/{scene.screened.slug}/"),
    }[page]
    client = signed_in_client(who)

    small, small_page = queries(client, url)
    grow(scene, 10, 100)
    large, large_page = queries(client, url)

    assert large == small, f"{small} queries at 10 rows, {large} at 100"
    # ...and the page did grow with its rows.
    if page == "review_queue":
        # (A page of the queue holds QUEUE_PAGE_SIZE; the rest are on the next pages.)
        assert small_page.count("Application #") == 10
        assert large_page.count("Application #") == QUEUE_PAGE_SIZE
        assert 'rel="next"' in large_page and 'rel="next"' not in small_page
    else:
        last_small, last_large = {
            "my_groups": ("Reader 9", "Reader 99"),
            "group_home": ("Guideline number 9", "Guideline number 99"),
        }[page]
        assert last_small in small_page and last_large in large_page
        assert last_large not in small_page


NEXT_LINK = re.compile(r'href="(\?[^"]*)" rel="next"')


def test_the_review_queue_is_keyset_paged_longest_waiting_first(scene):
    """Each page asks as many queries as the first; following "next" walks every
    application once, the longest waiting first, and the last page has no "next"."""
    grow(scene, 10, 100)
    client = signed_in_client(scene.facilitator)
    url = f"/screening/review/{scene.screened.slug}/"
    first_count, page = queries(client, url)
    seen = []
    while True:
        seen += [int(n) for n in re.findall(r"Application #(\d+)<", page)]
        found = NEXT_LINK.search(page)
        if not found:
            break
        count, page = queries(client, url + html.unescape(found.group(1)))
        assert count == first_count
    expected = list(
        Application.objects.filter(group=scene.screened)
        .order_by("submitted_at", "pk")
        .values_list("pk", flat=True)
    )
    assert len(expected) == 100 and seen == expected


def test_a_review_queue_address_with_a_bad_page_shows_the_first_page(scene):
    client = signed_in_client(scene.facilitator)
    response = client.get(f"/screening/review/{scene.screened.slug}/?after=nonsense")
    assert response.status_code == 200
    assert response.content.decode().count("Application #") == 10
