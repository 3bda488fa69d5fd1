from django.core.management.base import BaseCommand

from moderation.services import lapsed_actions_lift


class Command(BaseCommand):
    help = "Record the end of mutes and suspensions whose time is up, and tell open rooms."

    def handle(self, *args, **options):
        result = lapsed_actions_lift()
        self.stdout.write(f"Lifted {result.lifted} lapsed mute(s) or suspension(s).")
