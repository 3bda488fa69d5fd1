"""Roles that need a second factor, defined by the apps above accounts.

Accounts decides who must use two-factor authentication but does not know about groups;
an app that gives people such a role (groups: facilitators) registers its question here
when Django starts (in its ``AppConfig.ready``), so accounts never imports it."""

from collections.abc import Callable

from django.db.models import Expression

from accounts.models import User

_two_factor_roles: dict[str, Callable[[User], bool]] = {}
_two_factor_role_facts: dict[str, Callable[[], Expression]] = {}


def two_factor_role_register(
    name: str, holds_role: Callable[[User], bool], fact: Callable[[], Expression]
) -> None:
    """``holds_role(user)`` says whether the person has a role that needs a second factor;
    ``fact()`` says the same as a SQL expression about a user row (``OuterRef("pk")``), so
    the check of every page asks it with the person's other 2FA facts in one query
    (``accounts.selectors.user_two_factor_standing``). ``fact()`` must depend on the user
    row alone: that query is compiled once per process (accounts/user_row.py)."""
    _two_factor_roles[name] = holds_role
    _two_factor_role_facts[name] = fact


def two_factor_role_names() -> tuple[str, ...]:
    return tuple(_two_factor_role_facts)


def user_has_two_factor_role(user: User) -> bool:
    return any(holds_role(user) for holds_role in _two_factor_roles.values())


def two_factor_role_facts() -> dict[str, Expression]:
    """One expression per registered role, named ``role_<name>``."""
    return {f"role_{name}": fact() for name, fact in _two_factor_role_facts.items()}
