from django.core.management.base import BaseCommand

from privacy.services import disclosure_notices_send_due


class Command(BaseCommand):
    help = (
        "Tell members about disclosures required by law whose legal restriction on telling "
        "them has ended (run by the scheduler; safe to run as often as you like)."
    )

    def handle(self, *args, **options):
        result = disclosure_notices_send_due()
        self.stdout.write(f"Told {result.sent} member(s) about a disclosure.")
