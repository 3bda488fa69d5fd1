from accounts.models import User
from supportgroups.crypto import email_blind_index


def user_by_recovery_email(email: str) -> User | None:
    """Find an account by its recovery email without the email being stored in clear."""
    return User.objects.filter(recovery_email_index=email_blind_index(email)).first()
