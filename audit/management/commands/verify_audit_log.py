from django.core.management.base import BaseCommand, CommandError

from audit.services import chain_verify_and_record
from supportgroups.progress import ProgressBar


class Command(BaseCommand):
    help = (
        "Check the audit log's hash chain; name the first row that was altered, removed "
        "or reordered. Records the result for the audit console and emails admins on failure."
    )

    def handle(self, *args, **options):
        bar = ProgressBar(self.stderr, label="verifying", enabled=options["verbosity"] > 0)
        result, _ = chain_verify_and_record(progress=bar.update)
        bar.finish()
        if not result.ok:
            raise CommandError(
                f"Audit log broken at row {result.broken_seq} (id {result.broken_id}): "
                f"{result.problem}. {result.verified} rows before it verified."
            )
        rows = "row" if result.verified == 1 else "rows"
        self.stdout.write(f"Audit log intact: {result.verified} {rows} verified.")
