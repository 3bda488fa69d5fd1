# The people and sign-in helpers of the account tests: a member's own data is theirs.
from tests.accounts.conftest import _cheap_argon2, admin_user, outsider, owner  # noqa: F401
