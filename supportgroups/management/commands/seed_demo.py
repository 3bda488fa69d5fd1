from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from supportgroups.demo import DEMO_GROUP, DEMO_OPEN_GROUP, DEMO_PASSWORD, seed_demo_data


class Command(BaseCommand):
    help = "Create demo accounts and data for local development (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--allow-production",
            action="store_true",
            help="Seed even with DEBUG off (the demo accounts have a published password).",
        )
        parser.add_argument(
            "--url",
            default="http://127.0.0.1:8000",
            help="Where the app is served, for the sign-in address this prints.",
        )

    def handle(self, *args, allow_production: bool, url: str, **options):
        if not settings.DEBUG and not allow_production:
            raise CommandError(
                "Refusing to create demo accounts with DEBUG off; pass --allow-production "
                "if this really is a throwaway instance."
            )
        accounts = seed_demo_data()
        self.stdout.write(
            f'Demo data is ready: "{DEMO_GROUP}" (invitation-only: the member is in it) and '
            f'"{DEMO_OPEN_GROUP}" (open to applications, with screening: sign up as a new '
            "person and apply; the facilitator reviews). "
            f"Sign in at {url.rstrip('/')}/accounts/login/ as:"
        )
        for role, username in accounts:
            self.stdout.write(f"  {role:<12} {username:<16} password: {DEMO_PASSWORD}")
        self.stdout.write(
            "The admin and the facilitator are asked to set up two-factor authentication "
            "(any authenticator app) when they first sign in."
        )
