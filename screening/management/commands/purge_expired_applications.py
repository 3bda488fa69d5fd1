from django.conf import settings
from django.core.management.base import BaseCommand

from screening.services import applications_purge_expired


class Command(BaseCommand):
    help = (
        "Delete the answers, notes and messages of declined and withdrawn applications "
        "older than SCREENING_RETENTION_DAYS. Idempotent; run it daily (or with the message "
        "retention job)."
    )

    def handle(self, *args, **options):
        count = applications_purge_expired()
        self.stdout.write(
            f"Purged {count} application(s) decided more than "
            f"{settings.SCREENING_RETENTION_DAYS} days ago."
        )
