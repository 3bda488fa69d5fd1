from django.core.management.base import BaseCommand

from meetings.services import messages_purge_expired, presence_sweep_stale


class Command(BaseCommand):
    help = (
        "Apply every group's message retention: wipe the rooms of ended meetings under "
        '"delete when the meeting ends", and delete messages older than 7/30/90 days '
        "under those policies; forget the presence of sockets that vanished without "
        "closing. Idempotent; run it every few minutes."
    )

    def handle(self, *args, **options):
        result = messages_purge_expired()
        swept = presence_sweep_stale()
        self.stdout.write(
            f"Deleted {result.messages_deleted} message(s); wiped "
            f"{result.meetings_wiped} ended meeting room(s); forgot {swept} vanished "
            "socket(s)."
        )
