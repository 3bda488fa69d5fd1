"""Platform-wide operations that are not owned by one app."""

from collections.abc import Callable

from django.db import transaction

from audit.events import Action
from audit.services import record_event
from supportgroups.crypto import rotate_all_encrypted_columns


def encryption_keys_rotate(
    *, batch_size: int = 500, progress: Callable[[int], None] | None = None
) -> dict[str, int]:
    """Re-encrypt everything with the first key, then record that it happened.

    Batches commit one by one (a long rotation must not hold one huge transaction);
    the audit event is written once the last batch is done.
    """
    touched = rotate_all_encrypted_columns(batch_size=batch_size, progress=progress)
    with transaction.atomic():
        record_event(
            action=Action.ENCRYPTION_KEYS_ROTATED,
            extra={"rows_reencrypted": sum(touched.values()), "batch_size": batch_size},
        )
    return touched
