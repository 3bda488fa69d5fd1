"""Parts of a member's export from apps that the export may not import.

The export (``privacy.services.account_export``) reads every app below it directly. An app
beside it in the layers (``console``: its security notices) registers what it holds about
a person here, at start-up (its ``AppConfig.ready``), and the export asks every
registered part. So nothing a person is told or kept about is left out because of where
its app sits.
"""

from collections.abc import Callable
from typing import Any

ExportPart = Callable[[Any], Any]  # a user -> JSON-ready data

_parts: dict[str, ExportPart] = {}


def export_part_register(key: str, part: ExportPart) -> None:
    """Add ``part(user)`` to every export under ``key`` (once per key)."""
    if _parts.get(key, part) is not part:
        raise ValueError(f"Another export part already has the key {key!r}.")
    _parts[key] = part


def export_parts(user: Any) -> dict[str, Any]:
    """Every registered part of the export for this person, by key (in key order)."""
    return {key: _parts[key](user) for key in sorted(_parts)}


def export_with_parts(export: dict[str, Any], user: Any) -> dict[str, Any]:
    """The export with every registered part added after its own keys. A part whose key
    the export already uses is refused: it would silently replace that data."""
    parts = export_parts(user)
    taken = sorted(export.keys() & parts.keys())
    if taken:
        raise ValueError(f"Export parts would replace the export's own data: {taken}.")
    return {**export, **parts}
