"""What the frame of every page says about the signed-in person, asked in one query.

The navigation and the top of each page show a few facts about the person, each owned by
another app: how many of their applications have news (screening), whether they
facilitate a group (groups), whether a security notice waits for them (console). Asked
one by one they were a round trip each on every page (issue 22: the fixed cost of a
signed-in page). Accounts cannot import those apps, so each registers its fact here as a
SQL expression about the user row (in its ``AppConfig.ready``), and the first fact a page
asks for brings all of them in one ``SELECT`` on the user.

The answers are kept on the request only, and asked when the page is drawn (templates call
callables), after the view ran: a view that changes one (marks applications seen, reads a
notice) is shown its own change, and the next request asks again, so nothing here can go
stale. Nothing here decides what anyone may do: permission checks read their own facts.
"""

from collections.abc import Callable
from typing import Any

from django.db.models import Expression
from django.http import HttpRequest

from accounts.user_row import UserRowQuery

# name -> a function building the expression (built per query: an expression holding an
# OuterRef is resolved into the query that uses it).
_page_facts: dict[str, Callable[[], Expression]] = {}
# Compiled to SQL once per process: the statement is the same for everyone but the id.
_page_facts_query = UserRowQuery(
    lambda: {fact: expression() for fact, expression in _page_facts.items()},
    registered=lambda: tuple(_page_facts),
)


def page_fact_register(name: str, expression: Callable[[], Expression]) -> None:
    """``expression()`` is a SQL expression about the user row (``OuterRef("pk")`` is the
    person), e.g. ``Exists(Notice.objects.filter(user=OuterRef("pk"), read_at=None))``.
    It must depend on the user row alone (no clock, no request): its SQL is compiled once
    per process (accounts/user_row.py, which refuses one that is not)."""
    _page_facts[name] = expression


def page_fact(request: HttpRequest, name: str) -> Any:  # noqa: ANN401 - whatever the fact is
    """The signed-in person's fact ``name``; the first call of a request asks for all."""
    facts = getattr(request, "_page_facts", None)
    if facts is None:
        facts = (_page_facts_query.run(request.user.pk) if _page_facts else None) or {}
        request._page_facts = facts
    return facts.get(name)  # (None if the account was deleted meanwhile)
