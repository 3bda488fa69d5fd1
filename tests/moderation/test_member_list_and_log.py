"""The member list and the moderation log, each a page of its own per group: keyset-paged,
filtered (members by status and pseudonym, the log by step and member), refused to anyone
but the group's facilitators, and reading nothing from other groups."""

import re

import pytest
from django.utils import timezone

from groups.models import CURRENT_STATUSES, Membership
from moderation import services
from moderation.models import ActionKind, ModerationAction, step_label
from tests.moderation.conftest import (
    RULES,
    give_place,
    make_person,
    member_client,
    text_of,
    verified_client,
)


def members_url(world, query=""):
    return f"/moderation/{world.slug}/members/{query}"


def log_url(world, query=""):
    return f"/moderation/{world.slug}/log/{query}"


def names_on(response) -> list[str]:
    return re.findall(r'members/\d+/">([^<]+)</a>', response.content.decode())


def next_link(response) -> str | None:
    found = re.search(r'<a href="([^"]+)" rel="next">', response.content.decode())
    return found and found.group(1).replace("&amp;", "&")


# --- who may see them ---------------------------------------------------------------------


@pytest.mark.parametrize("page", [members_url, log_url])
def test_only_the_groups_facilitators_see_the_pages(world, fac, page):
    assert fac.get(page(world)).status_code == 200
    # A member of the group, the other group's facilitator and a stranger: 404, as if the
    # group had no such page.
    for who in (world.river.user, world.other_facilitator.user, world.stranger.user):
        client = verified_client(who) if who == world.other_facilitator.user else member_client(who)
        assert client.get(page(world)).status_code == 404
    anonymous = fac.__class__()
    assert anonymous.get(page(world))["Location"].startswith("/accounts/login/")


def test_the_log_refuses_a_member_of_another_group_as_its_filter(world, fac):
    assert fac.get(log_url(world, f"?member={world.stranger.pk}")).status_code == 404


# --- the member list ----------------------------------------------------------------------


def test_the_member_list_shows_each_members_status_warnings_and_attendance(world, fac):
    services.action_take(
        membership=world.fern, actor=world.facilitator.user, kind="warn", guideline_number=2
    )
    newcomer = give_place(world.group, make_person("newcomer"))  # no name, not signed
    text = text_of(fac.get(members_url(world)))
    today = timezone.now().strftime("%-d %b %Y")
    assert f"Fern Active 1 {today} —" in text  # one warning, never attended
    assert "Lantern (facilitator) Active" in text
    assert "(no name yet) (to sign) Waiting for you to choose a name and sign" in text
    assert f"members/{newcomer.pk}/" in fac.get(members_url(world)).content.decode()


def test_the_member_list_filters_by_status_and_finds_by_pseudonym(world, fac):
    services.action_take(
        membership=world.fern,
        actor=world.facilitator.user,
        kind="mute",
        guideline_number=2,
        minutes=60,
    )
    assert names_on(fac.get(members_url(world, "?status=muted"))) == ["Fern"]
    assert names_on(fac.get(members_url(world, "?name=ARB"))) == ["Harbour"]
    assert names_on(fac.get(members_url(world, "?status=active&name=fern"))) == []
    assert "No members match." in text_of(fac.get(members_url(world, "?name=nobody")))


def test_a_filter_not_understood_shows_everyone_and_says_so(world, fac):
    response = fac.get(members_url(world, "?status=removed&after=abc"))
    assert response.status_code == 200
    assert "That filter was not understood" in text_of(response)
    assert names_on(response) == ["Fern", "Harbour", "Lantern", "River"]
    response = fac.get(log_url(world, "?kind=nonsense"))
    assert response.status_code == 200
    assert "That filter was not understood" in text_of(response)


def test_paging_through_the_member_list_shows_everyone_once_in_order(world, fac):
    for i in range(120):
        give_place(world.group, make_person(f"listed-{i:03d}"), f"Paged {i:03d}")
    seen: list[str] = []
    url = members_url(world)
    pages = 0
    while url:
        response = fac.get(url)
        seen += names_on(response)
        pages += 1
        link = next_link(response)
        url = link and members_url(world, link)
    assert pages == 3
    everyone = list(
        Membership.objects.filter(group=world.group, status__in=CURRENT_STATUSES)
        .order_by("pseudonym", "pk")
        .values_list("pseudonym", flat=True)
    )
    assert seen == everyone and len(seen) == 124


def test_paging_keeps_the_filter(world, fac):
    for i in range(60):
        give_place(world.group, make_person(f"listed-{i:03d}"), f"Paged {i:03d}")
    first = fac.get(members_url(world, "?name=paged"))
    link = next_link(first)
    assert "name=paged" in link
    second = fac.get(members_url(world, link))
    assert len(names_on(first)) == 50 and len(names_on(second)) == 10
    assert next_link(second) is None


# --- the moderation log -------------------------------------------------------------------


def take(world, membership, kind, n):
    for _ in range(n):
        services.action_take(
            membership=membership, actor=world.facilitator.user, kind=kind, guideline_number=1
        )


def test_the_log_filters_by_step_and_by_member(world, fac):
    take(world, world.fern, "warn", 2)
    take(world, world.river, "warn", 1)
    services.action_take(
        membership=world.river,
        actor=world.facilitator.user,
        kind="mute",
        guideline_number=2,
        minutes=10,
    )
    text = text_of(fac.get(log_url(world)))
    assert text.count("Lantern: Warning") == 3 and "Lantern: Muted — River (rule 2)" in text

    muted = text_of(fac.get(log_url(world, "?kind=mute")))
    assert "Muted — River" in muted and "Lantern: Warning" not in muted

    river = fac.get(log_url(world, f"?member={world.river.pk}"))
    text = text_of(river)
    assert "Moderation log: River" in text
    assert "— Fern" not in text and text.count("— River") == 2
    # Each row links to that member's own log.
    assert f'log/?member={world.fern.pk}"' in fac.get(log_url(world)).content.decode()

    both = text_of(fac.get(log_url(world, f"?member={world.river.pk}&kind=warn")))
    assert both.count("— River") == 1


def test_paging_through_the_log_shows_every_step_once_newest_first(world, fac):
    now = timezone.now()
    # Same-moment steps too: the page boundary must not skip or repeat them.
    ModerationAction.objects.bulk_create(
        ModerationAction(
            group=world.group,
            membership=world.fern,
            kind=ActionKind.WARN,
            guideline_number=1,
            guideline_text=RULES[0],
            actor=world.facilitator,
            created_at=now if i % 2 else now.replace(microsecond=0),
        )
        for i in range(110)
    )
    seen: list[int] = []
    url = log_url(world)
    while url:
        response = fac.get(url)
        seen += [int(n) for n in re.findall(r'data-step="(\d+)"', response.content.decode())]
        link = next_link(response)
        url = link and log_url(world, link)
    expected = list(
        ModerationAction.objects.filter(group=world.group)
        .order_by("-created_at", "-pk")
        .values_list("pk", flat=True)
    )
    assert seen == expected and len(seen) == 110


def test_the_logs_filter_names_each_step_in_the_words_of_the_logs_rows(world, fac):
    # Every way a row can name a step (a hidden board post reads "Board post hidden") is
    # found in its filter's option, so a facilitator picks the words they just read.
    page = fac.get(log_url(world)).content.decode()
    options = dict(re.findall(r'<option value="(\w+)"[^>]*>([^<]*)</option>', page))
    for kind in ActionKind:
        for post in (False, True):
            row_words = step_label(kind, post=post)
            assert row_words.lower() in options[kind].lower(), (kind, options[kind])
