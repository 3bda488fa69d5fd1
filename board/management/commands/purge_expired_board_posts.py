from django.core.management.base import BaseCommand

from board.services import posts_purge_expired


class Command(BaseCommand):
    help = (
        "Apply every group's retention to its board: posts older than 7/30/90 days under "
        'those policies; under "delete when the meeting ends", posts written before the end '
        "of the group's latest ended meeting. A thread goes with its last post. Idempotent; "
        "run it with purge_expired_messages."
    )

    def handle(self, *args, **options):
        def progress(done: int, total: int, deleted: int) -> None:
            if options["verbosity"] >= 1:
                self.stdout.write(f"Boards: {done}/{total} groups, {deleted} post(s) deleted")

        result = posts_purge_expired(progress=progress)
        self.stdout.write(
            f"Deleted {result.posts_deleted} board post(s) and {result.threads_deleted} "
            f"emptied thread(s) across {result.groups} board(s)."
        )
