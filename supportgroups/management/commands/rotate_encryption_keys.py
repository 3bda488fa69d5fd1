from django.core.management.base import BaseCommand, CommandError

from supportgroups.crypto import DecryptionError, count_encrypted_rows
from supportgroups.progress import ProgressBar
from supportgroups.services import encryption_keys_rotate


class Command(BaseCommand):
    help = (
        "Re-encrypt every encrypted column with the first key of FIELD_ENCRYPTION_KEYS. "
        "Safe to interrupt and run again: rows already under the first key are skipped."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args, batch_size: int, verbosity: int, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        bar = ProgressBar(
            self.stderr, label="re-encrypting", total=count_encrypted_rows(), enabled=verbosity > 0
        )
        try:
            touched = encryption_keys_rotate(batch_size=batch_size, progress=bar.update)
        except DecryptionError as error:
            raise CommandError(
                f"{error} Keep the old key in FIELD_ENCRYPTION_KEYS and retry."
            ) from None
        finally:
            bar.finish()
        for label, count in touched.items():
            if verbosity > 1:
                self.stdout.write(f"  {label}: {count}")
        self.stdout.write(f"Re-encrypted {sum(touched.values())} rows with the first key.")
