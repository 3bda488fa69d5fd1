from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.utils import timezone
from django.utils.dateparse import parse_date

from audit.database import database_retention_days
from audit.services import audit_log_prune


class Command(BaseCommand):
    help = (
        "Delete audit events older than AUDIT_RETENTION_DAYS (or --before DATE), recording "
        "the pruning as an event so the chain stays verifiable. Export the range first."
    )

    def add_arguments(self, parser):
        parser.add_argument("--before", help="Prune events before this date (YYYY-MM-DD).")

    def handle(self, *args, before: str | None, **options):
        if before:
            try:
                day = parse_date(before)
            except ValueError:  # well-formed but not a real day, e.g. 2020-02-30
                day = None
            if day is None:
                raise CommandError(f"--before must be a date like 2020-01-31, not {before!r}.")
            cutoff = timezone.make_aware(
                timezone.datetime.combine(day, timezone.datetime.min.time())
            )
        else:
            cutoff = timezone.now() - timedelta(days=settings.AUDIT_RETENTION_DAYS)
        if cutoff > timezone.now() - timedelta(days=settings.AUDIT_RETENTION_DAYS):
            raise CommandError(
                f"Refusing to prune events younger than AUDIT_RETENTION_DAYS "
                f"({settings.AUDIT_RETENTION_DAYS} days)."
            )
        if connection.vendor == "postgresql":
            # The database enforces its own copy of the retention, which only `migrate`
            # (the tables' owner) sets; say so instead of failing on its refusal.
            database_days = database_retention_days()
            if database_days and cutoff > timezone.now() - timedelta(days=database_days):
                raise CommandError(
                    f"Refusing to prune events younger than the database's retention "
                    f"({database_days} days). It is copied from AUDIT_RETENTION_DAYS "
                    "when `migrate` runs as the tables' owner."
                )
        count = audit_log_prune(before=cutoff)
        self.stdout.write(f"Pruned {count} audit event(s) from before {cutoff:%Y-%m-%d}.")
