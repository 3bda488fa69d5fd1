"""Site-wide role questions answered by other apps' data, kept apart so that
``accounts`` does not import the apps that build on it at module level."""

from accounts.models import User


def user_is_facilitator_anywhere(user: User) -> bool:
    from groups.selectors import user_facilitates_any_group

    return user_facilitates_any_group(user)
