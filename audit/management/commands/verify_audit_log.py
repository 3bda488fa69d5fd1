import re

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from audit.chain import HeadAnchor
from audit.database import connected_role_owns_audit_table
from audit.services import chain_verify_and_record
from supportgroups.progress import ProgressBar

HEAD = re.compile(r"(?P<seq>[1-9][0-9]*):(?P<hash>[0-9a-f]{64})")


def expected_head(value: str) -> HeadAnchor:
    match = HEAD.fullmatch(value.strip().lower())
    if not match:
        raise CommandError(
            f"--expect-head must be a head as this command prints it, ROW:HASH "
            f"(e.g. 1234:{'0' * 8}…, 64 hex digits), not {value!r}."
        )
    return HeadAnchor(seq=int(match["seq"]), hash=match["hash"], source="--expect-head")


class Command(BaseCommand):
    help = (
        "Check the audit log's hash chain; name the first row that was altered, removed "
        "or reordered, and check that no row was cut off the end since the last "
        "verification (or since the head given with --expect-head). Prints the head to "
        "keep outside the database. Records the result for the audit console and emails "
        "admins on failure."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--expect-head",
            metavar="ROW:HASH",
            help=(
                "A head printed by an earlier run and kept outside the database: that row "
                "must still be in the log with that hash (unless pruned from the start)."
            ),
        )

    def handle(self, *args, expect_head: str | None, **options):
        anchor = expected_head(expect_head) if expect_head else None
        if connection.vendor == "postgresql" and connected_role_owns_audit_table():
            self.stderr.write(
                "Warning: this role owns the audit table and could switch off its "
                "append-only triggers; the app must be served under a role that does not "
                "own its tables (README, Operations: Database roles)."
            )
        bar = ProgressBar(self.stderr, label="verifying", enabled=options["verbosity"] > 0)
        result, _ = chain_verify_and_record(expected_head=anchor, progress=bar.update)
        bar.finish()
        if not result.ok:
            where = f"row {result.broken_seq}"
            if result.broken_id is not None:
                where += f" (id {result.broken_id})"
            raise CommandError(
                f"Audit log broken at {where}: {result.problem}. "
                f"{result.verified} rows before it verified."
            )
        rows = "row" if result.verified == 1 else "rows"
        self.stdout.write(f"Audit log intact: {result.verified} {rows} verified.")
        # The line to keep outside the database (a log shipped elsewhere, an email, a
        # ticket): a later --expect-head with it shows whether rows were cut off the end.
        if result.head_seq is None:
            self.stdout.write("Head: none (the log is empty)")
        else:
            self.stdout.write(f"Head: {result.head_seq}:{result.head_hash}")
