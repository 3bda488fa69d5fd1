"""supportgroups/compiled_query.py: a query compiled once, run with its parameters."""

from datetime import datetime, timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.db.models import Count, F, Window
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import User
from supportgroups.compiled_query import CompiledQuery
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def users_joined_after(since: datetime):
    return (
        User.objects.filter(date_joined__gt=since)
        .annotate(total=Window(Count("pk")), handle=F("username"))
        .order_by("pk")
    )


def test_the_rows_are_the_querysets_own_with_their_annotations_for_each_value():
    old = make_user("compiled-old")
    User.objects.filter(pk=old.pk).update(date_joined=timezone.now() - timedelta(days=10))
    new = make_user("compiled-new")
    query = CompiledQuery(users_joined_after, since=datetime)

    for since in (timezone.now() - timedelta(days=20), timezone.now() - timedelta(days=5)):
        expected = list(users_joined_after(since))
        with CaptureQueriesContext(connection) as queries:
            rows = query.run(since=since)
        assert len(queries) == 1
        assert [(r.pk, r.username, r.handle, r.total) for r in rows] == [
            (r.pk, r.username, r.handle, r.total) for r in expected
        ]
        assert all(isinstance(r, User) for r in rows)
    # The time is a parameter: it is not frozen at the first run's value.
    assert [r.pk for r in query.run(since=timezone.now() - timedelta(days=5))] == [new.pk]
    assert [r.pk for r in query.run(since=timezone.now() + timedelta(days=1))] == []


def test_a_query_reading_the_clock_itself_is_refused():
    def joined_before_now(user_id: int):
        return User.objects.filter(pk__gt=user_id, date_joined__lt=timezone.now())

    with pytest.raises(ImproperlyConfigured, match="joined_before_now"):
        CompiledQuery(joined_before_now, user_id=int).run(user_id=1)


def test_a_parameter_the_query_does_not_use_is_refused():
    def everyone(user_id: int):
        return User.objects.all()

    with pytest.raises(ImproperlyConfigured, match="everyone"):
        CompiledQuery(everyone, user_id=int).run(user_id=1)


def test_a_missing_or_unknown_value_is_refused():
    query = CompiledQuery(lambda user_id: User.objects.filter(pk=user_id), user_id=int)
    with pytest.raises(TypeError):
        query.run()
    with pytest.raises(TypeError):
        query.run(user_id=1, since=timezone.now())


def joined_between(after: datetime, before: datetime):
    return User.objects.filter(date_joined__gt=after, date_joined__lt=before).order_by("pk")


def pks_between(low: int, high: int):
    return User.objects.filter(pk__gte=low, pk__lte=high).order_by("pk")


def test_two_parameters_of_one_type_are_each_put_in_their_own_place():
    users = [make_user(f"compiled-{n}") for n in range(3)]
    now = timezone.now()
    for n, user in enumerate(users):
        User.objects.filter(pk=user.pk).update(date_joined=now - timedelta(days=10 * n))
    between = CompiledQuery(joined_between, after=datetime, before=datetime)
    window = {"after": now - timedelta(days=15), "before": now - timedelta(days=5)}
    assert [u.pk for u in between.run(**window)] == [users[1].pk]
    assert [u.pk for u in between.run(**window)] == [u.pk for u in joined_between(**window)]
    # The other way round finds nothing, as the queryset does.
    swapped = {"after": window["before"], "before": window["after"]}
    assert between.run(**swapped) == [] == list(joined_between(**swapped))

    ids = CompiledQuery(pks_between, low=int, high=int)
    assert [u.pk for u in ids.run(low=users[1].pk, high=users[2].pk)] == [
        users[1].pk,
        users[2].pk,
    ]


def test_a_parameter_of_a_type_it_cannot_stand_in_for_is_refused_at_once():
    with pytest.raises(ImproperlyConfigured, match="int, str or datetime"):
        CompiledQuery(lambda share: User.objects.filter(pk__gt=share), share=float)


def test_related_rows_converters_and_text_parameters_come_as_the_queryset_gives_them():
    """``select_related`` rows are built (the place's group) with their fields' converters
    (the group's encrypted invitation token decrypted), and a text parameter is a
    parameter like the others."""
    from groups.models import Membership
    from tests.factories import give_place, make_group, make_person

    admin = make_person("compiled-keeper", staff=True)
    group = make_group(admin, name="Compiled place")
    other = make_group(admin, name="Compiled elsewhere")
    person = make_user("compiled-place")
    place = give_place(group, person, "Heron")
    give_place(other, person, "Wren")

    def place_in(user_id: int, slug: str):
        return Membership.objects.select_related("group").filter(user_id=user_id, group__slug=slug)

    query = CompiledQuery(place_in, user_id=int, slug=str)
    for slug in (group.slug, other.slug, "no-such-group"):
        expected = list(place_in(person.pk, slug))
        with CaptureQueriesContext(connection) as queries:
            rows = query.run(user_id=person.pk, slug=slug)
        assert len(queries) == 1
        assert [
            (r.pk, r.pseudonym, r.group.pk, r.group.name, r.group.link_token) for r in rows
        ] == [(r.pk, r.pseudonym, r.group.pk, r.group.name, r.group.link_token) for r in expected]
    (row,) = query.run(user_id=person.pk, slug=group.slug)
    assert row.pk == place.pk and row.pseudonym == "Heron"
    with CaptureQueriesContext(connection) as queries:
        assert row.group.name == "Compiled place"
        assert row.group.link_token == group.link_token and len(row.group.link_token) > 10
    assert len(queries) == 0  # the group came with the row, decrypted


def test_values_rows_and_two_parameters_of_one_kind():
    def handles_between(low: int, high: int):
        return (
            User.objects.filter(pk__gte=low, pk__lte=high).values("pk", "username").order_by("pk")
        )

    users = [make_user(f"compiled-values-{n}") for n in range(3)]
    query = CompiledQuery(handles_between, low=int, high=int)
    rows = query.run(low=users[1].pk, high=users[2].pk)
    assert rows == [{"pk": u.pk, "username": u.username} for u in users[1:]]
    # The two parameters are told apart, not swapped.
    assert query.run(low=users[2].pk, high=users[1].pk) == []


def test_a_value_past_a_columns_range_is_answered_as_the_orm_does():
    """An integer column's value reaches the driver wrapped in its type (Int4); one past
    that type's range is not sent (the driver would refuse it): the ORM answers."""
    from board.models import Thread

    def thread_numbered(number: int):
        return Thread.objects.filter(number=number)

    query = CompiledQuery(thread_numbered, number=int)
    assert query.run(number=3) == []
    assert query.run(number=2**40) == []
    assert query.run(number=-(2**40)) == []
