"""Roles that need a second factor, defined by the apps above accounts.

Accounts decides who must use two-factor authentication but does not know about groups;
an app that gives people such a role (groups: facilitators) registers its question here
when Django starts (in its ``AppConfig.ready``), so accounts never imports it."""

from collections.abc import Callable

from accounts.models import User

_two_factor_roles: dict[str, Callable[[User], bool]] = {}


def two_factor_role_register(name: str, holds_role: Callable[[User], bool]) -> None:
    """``holds_role(user)`` says whether the person has a role that needs a second factor."""
    _two_factor_roles[name] = holds_role


def user_has_two_factor_role(user: User) -> bool:
    return any(holds_role(user) for holds_role in _two_factor_roles.values())
