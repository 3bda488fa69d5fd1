"""Issue 22: the fixed cost of a signed-in page. The frame's facts about the person (news
of their applications, whether they facilitate, unread security notices) come in one
query when the page is drawn (accounts/facts.py), and the 2FA check of a session without
a second factor asks its two facts in one query (accounts.selectors.
user_two_factor_standing). Neither is kept beyond its request: each test changes a fact
between two requests of one session and sees the next page obey it."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import TOTPDevice
from tests.factories import appoint, give_place, make_group, make_person, make_user
from tests.factories import signed_in_client as signed_in

pytestmark = pytest.mark.django_db


def statements(client, url: str) -> tuple[object, list[str]]:
    client.get(url)  # warm: per-process caches, the session's "last seen"
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    return response, [q["sql"] for q in captured.captured_queries]


def test_the_frame_asks_its_facts_about_the_person_in_one_query():
    member = make_user("facts-member")
    admin = make_person("facts-admin", staff=True)
    give_place(make_group(admin, "Facts group"), member, "Wren", actor=admin)
    client = signed_in(member, verified=False)

    response, sqls = statements(client, reverse("groups:mine"))

    assert response.status_code == 200
    frame = [q for q in sqls if "facilitates_any_group" in q]
    assert len(frame) == 1
    assert "screening_application" in frame[0] and "console_securitynotice" in frame[0]
    # No notice waits, so none is read; the applications are not read one by one either.
    assert not [q for q in sqls if q not in frame and "console_securitynotice" in q]
    assert not [q for q in sqls if q not in frame and "screening_application" in q]
    # The 2FA check of this session (no second factor): its two facts, one query.
    standing = [q for q in sqls if "has_two_factor" in q]
    assert len(standing) == 1 and "groups_membership" in standing[0]
    assert not [q for q in sqls if q not in standing and "accounts_totpdevice" in q]


def test_the_navigation_learns_a_new_facilitator_on_their_next_page():
    admin = make_person("facts-admin", staff=True)
    group = make_group(admin, "Facts group")
    person = make_user("facts-person")
    give_place(group, person, "Wren", actor=admin)
    client = signed_in(person)  # verified: the role will need it
    facilitate = f'href="{reverse("moderation:dashboard")}"'
    assert facilitate not in client.get(reverse("groups:mine")).content.decode()

    appoint(group, person, actor=admin)

    assert facilitate in client.get(reverse("groups:mine")).content.decode()


def test_a_member_appointed_facilitator_mid_session_must_set_up_two_factor_at_once():
    admin = make_person("facts-admin", staff=True)
    group = make_group(admin, "Facts group")
    person = make_user("facts-person")
    give_place(group, person, "Wren", actor=admin)
    client = signed_in(person, verified=False)
    assert client.get(reverse("groups:mine")).status_code == 200

    appoint(group, person, actor=admin)

    response = client.get(reverse("groups:mine"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_two_factor_setup"))


def test_a_session_not_verified_by_a_second_factor_set_up_elsewhere_ends_at_once():
    admin = make_person("facts-admin", staff=True)
    person = make_user("facts-person")
    give_place(make_group(admin, "Facts group"), person, "Wren", actor=admin)
    client = signed_in(person, verified=False)
    assert client.get(reverse("groups:mine")).status_code == 200

    TOTPDevice.objects.create(user=person, name="Phone", confirmed=True)

    response = client.get(reverse("groups:mine"))
    assert response.status_code == 302 and response["Location"] == reverse("account_login")
    assert "_auth_user_id" not in client.session


# --- compiled once per process (accounts/user_row.py) ----------------------------------


def test_the_facts_compiled_once_are_each_persons_own():
    """One statement compiled for everyone, run with each person's id: two people in one
    process each see their own facts, never the first one's."""
    admin = make_person("facts-admin", staff=True)
    group = make_group(admin, "Facts group")
    facilitator = make_user("facts-facilitator")
    appoint(group, facilitator, "Lantern", actor=admin)
    member = make_user("facts-member")
    give_place(group, member, "Wren", actor=admin)
    facilitate = f'href="{reverse("moderation:dashboard")}"'

    for _ in range(2):  # and again, each from the statement compiled by the other
        assert facilitate in signed_in(facilitator).get(reverse("groups:mine")).content.decode()
        assert facilitate not in signed_in(member).get(reverse("groups:mine")).content.decode()


def test_a_user_row_fact_reading_the_clock_is_refused():
    """Compiled once, a fact holding the time of its first request would be frozen at it:
    compiling notices that the statement depends on more than the person's id."""
    from django.core.exceptions import ImproperlyConfigured
    from django.db.models import Exists, OuterRef
    from django.utils import timezone

    from accounts.models import Session
    from accounts.user_row import UserRowQuery

    clock = UserRowQuery(
        lambda: {
            "live": Exists(
                Session.objects.filter(user=OuterRef("pk"), expire_date__gt=timezone.now())
            )
        },
        registered=lambda: ("live",),
    )
    with pytest.raises(ImproperlyConfigured):
        clock.run(make_user("facts-clock").pk)


def test_a_user_row_fact_registered_later_is_asked_with_the_others():
    from django.db.models import Exists, OuterRef

    from accounts.user_row import UserRowQuery

    person = make_user("facts-late")
    facts = {"has_device": lambda: Exists(TOTPDevice.objects.filter(user=OuterRef("pk")))}
    query = UserRowQuery(
        lambda: {name: fact() for name, fact in facts.items()}, registered=lambda: tuple(facts)
    )
    assert query.run(person.pk) == {"has_device": False}

    facts["is_person"] = lambda: Exists(
        type(person).objects.filter(pk=OuterRef("pk"), username=person.username)
    )

    assert query.run(person.pk) == {"has_device": False, "is_person": True}
    assert query.run(-1) is None
