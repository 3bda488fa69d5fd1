"""The hash chain: how a row's hash is computed and how the whole log is checked."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db.models import TextField
from django.db.models.functions import Cast

from audit.events import Action
from audit.models import GENESIS_HASH, Event
from supportgroups.crypto import DecryptionError, decrypt_str


def canonical_content(event: Event) -> bytes:
    """The fields the HMAC covers, in one stable serialisation."""
    content = {
        "seq": event.seq,
        "created_at": event.created_at.isoformat(),
        "actor": event.actor_id,
        "subject": event.subject_id,
        "action": event.action,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "group": event.group_id,
        "ip": event.ip,
        "extra": event.extra,
    }
    return json.dumps(content, sort_keys=True, separators=(",", ":")).encode("utf-8")


def compute_hash(prev_hash: str, event: Event) -> str:
    key = settings.AUDIT_KEY
    if not key:
        raise ImproperlyConfigured("AUDIT_KEY is not set.")
    message = prev_hash.encode("ascii") + b"\n" + canonical_content(event)
    return hmac.new(key.encode("utf-8"), message, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class HeadAnchor:
    """A row the chain reached when someone last looked: the stored checkpoint of the
    previous verification, or a head an operator kept outside the database."""

    seq: int
    hash: str
    # Who saw that row, as a message says it: "the verification of 2026-12-04 03:00 UTC".
    source: str


@dataclass(frozen=True)
class VerificationResult:
    verified: int
    broken_seq: int | None = None
    broken_id: int | None = None
    problem: str = ""
    head_seq: int | None = None
    head_hash: str = ""

    @property
    def ok(self) -> bool:
        return self.broken_seq is None


def verify_chain(
    *,
    anchors: Sequence[HeadAnchor] = (),
    progress: Callable[[int], None] | None = None,
) -> VerificationResult:
    """Walk the log in order; stop at the first row that breaks the chain.

    Then check the ``anchors``: the walk alone cannot see rows cut off the end (the
    rows left still chain), so each row an anchor names must still be there with the
    same hash, unless pruning removed it from the head.
    """
    # The IP column is read raw and decrypted here, so an undecryptable row is named
    # instead of aborting the whole walk.
    rows = (
        Event.objects.defer("ip")
        .annotate(raw_ip=Cast("ip", output_field=TextField()))
        .order_by("seq")
        .iterator(chunk_size=2000)
    )
    anchored = {anchor.seq for anchor in anchors}
    seen_hashes: dict[int, str] = {}
    expected_prev = expected_seq = first_seq = None
    verified = 0
    for event in rows:
        if expected_seq is None:
            expected_seq, expected_prev = _chain_anchor(event)
            first_seq = expected_seq
        if event.seq != expected_seq:
            return _broken(verified, event, f"{_missing(expected_seq, event.seq - 1)} (removed)")
        if event.prev_hash != expected_prev:
            return _broken(
                verified, event, "it does not follow the row before it (removed or reordered)"
            )
        try:
            raw_ip = event.raw_ip
            event.ip = decrypt_str(raw_ip, where=f"audit event {event.seq}") if raw_ip else None
        except DecryptionError:
            return _broken(verified, event, "its IP address cannot be decrypted with any key")
        if not hmac.compare_digest(compute_hash(event.prev_hash, event), event.hash):
            return _broken(verified, event, "its content does not match its hash (altered)")
        if event.seq in anchored:
            seen_hashes[event.seq] = event.hash
        verified += 1
        expected_prev = event.hash
        expected_seq = event.seq + 1
        if progress:
            progress(verified)
    head_seq = expected_seq - 1 if expected_seq is not None else None
    for anchor in sorted(anchors, key=lambda anchor: -anchor.seq):
        if head_seq is None or anchor.seq > head_seq:
            first_missing = 1 if head_seq is None else head_seq + 1
            ends = "the log is empty" if head_seq is None else f"the log ends at row {head_seq}"
            return VerificationResult(
                verified,
                broken_seq=first_missing,
                problem=(
                    f"{_missing(first_missing, anchor.seq)} (removed from the end): "
                    f"{ends}, but {anchor.source} saw row {anchor.seq}"
                ),
            )
        if anchor.seq < first_seq:
            continue  # pruned from the head, and the pruning is recorded in the chain
        if not hmac.compare_digest(seen_hashes[anchor.seq], anchor.hash):
            return VerificationResult(
                verified,
                broken_seq=anchor.seq,
                problem=(
                    f"it is not the row {anchor.source} saw there (another hash): the log "
                    "was cut back and written on, or rewritten, or the anchor is wrong"
                ),
            )
    return VerificationResult(verified, head_seq=head_seq, head_hash=expected_prev or "")


def _chain_anchor(first: Event) -> tuple[int, str]:
    """Where the chain must start: row 1 after the genesis hash, or where a pruning left it.

    Pruning (the only sanctioned removal) records the first kept row and its prev_hash in
    its own event, which is itself part of the chain; any other missing head is a removal.
    """
    if first.seq == 1:
        return 1, GENESIS_HASH
    pruned = (
        Event.objects.filter(action=Action.AUDIT_LOG_PRUNED, extra__first_seq=first.seq)
        .order_by("-seq")
        .values_list("extra", flat=True)
        .first()
    )
    if pruned and pruned.get("anchor_hash") == first.prev_hash:
        return first.seq, first.prev_hash
    return 1, GENESIS_HASH


def _missing(first: int, last: int) -> str:
    return f"row {first} is missing" if first == last else f"rows {first} to {last} are missing"


def _broken(verified: int, event: Event, problem: str) -> VerificationResult:
    return VerificationResult(verified, broken_seq=event.seq, broken_id=event.id, problem=problem)
