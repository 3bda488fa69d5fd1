"""Exporting a filtered range of the log (CSV and JSON Lines) from the console, and the
offline recipe that verifies it (README, "Operations": ``AUDIT_KEY=...
python3 audit/verify_export.py audit-log.jsonl``), run here as a subprocess with nothing
but the standard library (``python -I -S``) and the key in its environment."""

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from audit.events import Action
from audit.models import Event
from audit.services import record_event
from tests.audit.conftest import (
    events,
    last_event,
    member_client,
    open_answers,
    reveal,
    verified_client,
)

pytestmark = pytest.mark.django_db

REPO_ROOT = Path(__file__).resolve().parents[2]
VERIFIER = REPO_ROOT / "audit" / "verify_export.py"
LANTERN_IP = "203.0.113.7"
ANSWERS_VIEWED = str(int(Action.APPLICATION_ANSWERS_VIEWED))
FIELDS = [
    "seq",
    "created_at",
    "actor",
    "subject",
    "action",
    "target_type",
    "target_id",
    "group",
    "ip",
    "extra",
    "prev_hash",
    "hash",
]


@pytest.fixture
def looks(world):
    """Lantern opens Heron's answers twice and reveals River's contact; Beacon opens
    Wren's answers once; plus events with unusual content. Returns Lantern's two looks."""
    open_answers(world.heron_application, world.lantern, ip=LANTERN_IP)
    first = last_event()
    open_answers(world.wren_application, world.beacon, ip="2001:db8::7")
    open_answers(world.heron_application, world.lantern, ip=LANTERN_IP)
    second = last_event()
    reveal(world.river, world.lantern, ip=LANTERN_IP)
    record_event(
        action=Action.REPORT_FILED,
        extra={"report_id": 3, "labels": ['ünïcode, "quoted"', None, True], "depth": {"n": 1}},
    )
    return first, second


def download(client, **params):
    response = client.get("/audit/export/", params)
    assert response.status_code == 200, response.content[:2000]
    return response, b"".join(response.streaming_content).decode("utf-8")


def jsonl_rows(content: str) -> list[dict]:
    return [json.loads(line) for line in content.splitlines() if line.strip()]


def csv_rows(content: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(content)))


def verify(path: Path, *, key: str | None = None, args=None):
    """The documented offline recipe: standard library only, the key in the environment."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    if key is None:
        key = settings.AUDIT_KEY
    if key:
        env["AUDIT_KEY"] = key
    return subprocess.run(
        [sys.executable, "-I", "-S", str(VERIFIER), *([str(path)] if args is None else args)],
        cwd=path.parent if path else REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


# --- exporting --------------------------------------------------------------------------------


def test_it_exports_a_filtered_range_as_json_lines_with_each_hash(
    world, admin_client, looks, tmp_path
):
    first, second = looks
    response, content = download(
        admin_client, actor="fac-lantern", action=ANSWERS_VIEWED, format="jsonl"
    )

    assert response["Content-Type"] == "application/jsonl"
    assert response["Content-Disposition"] == 'attachment; filename="audit-log.jsonl"'
    rows = jsonl_rows(content)
    assert [row["seq"] for row in rows] == [first.seq, second.seq]  # oldest first
    for row, event in zip(rows, (first, second), strict=True):
        assert set(row) == set(FIELDS)
        assert row["hash"] == event.hash
        assert row["prev_hash"] == event.prev_hash
        assert row["actor"] == world.lantern.user_id
        assert row["subject"] == world.heron.pk
        assert row["action"] == int(Action.APPLICATION_ANSWERS_VIEWED)
        assert (row["target_type"], row["target_id"]) == (
            "screening.application",
            str(world.heron_application.pk),
        )
        assert row["group"] == world.group.pk
        assert row["ip"] == LANTERN_IP

    exported = tmp_path / "audit-log.jsonl"
    exported.write_text(content, encoding="utf-8")
    result = verify(exported)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "2 rows verified."


def test_it_exports_a_filtered_range_as_csv_with_each_hash(world, admin_client, looks, tmp_path):
    first, second = looks
    response, content = download(admin_client, ip=LANTERN_IP, format="csv")

    assert response["Content-Type"] == "text/csv"
    assert response["Content-Disposition"] == 'attachment; filename="audit-log.csv"'
    rows = csv_rows(content)
    wanted = Event.objects.filter(seq__gte=first.seq, actor_id=world.lantern.user_id)
    assert [int(row["seq"]) for row in rows] == sorted(e.seq for e in wanted)
    assert len(rows) == 3  # two looks and the reveal
    assert [row["hash"] for row in rows] == [
        Event.objects.get(seq=int(row["seq"])).hash for row in rows
    ]
    assert list(rows[0]) == FIELDS

    exported = tmp_path / "audit-log.csv"
    exported.write_text(content, encoding="utf-8")
    result = verify(exported)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "3 rows verified."


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_the_whole_log_round_trips_including_odd_content(world, admin_client, looks, fmt, tmp_path):
    everything = list(Event.objects.order_by("seq").values_list("seq", "hash"))
    _, content = download(admin_client, format=fmt)
    rows = jsonl_rows(content) if fmt == "jsonl" else csv_rows(content)

    assert [(int(row["seq"]), row["hash"]) for row in rows] == everything
    odd = next(row for row in rows if int(row["action"]) == int(Action.REPORT_FILED))
    extra = odd["extra"] if fmt == "jsonl" else json.loads(odd["extra"])
    assert extra == {
        "report_id": 3,
        "labels": ['ünïcode, "quoted"', None, True],
        "depth": {"n": 1},
    }
    assert odd["ip"] in (None, "")

    exported = tmp_path / f"audit-log.{fmt}"
    exported.write_text(content, encoding="utf-8")
    result = verify(exported)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{len(everything)} rows verified."


def test_the_page_links_to_an_export_of_what_it_shows(world, admin_client, looks):
    first, second = looks
    page = admin_client.get("/audit/", {"actor": "fac-lantern", "action": ANSWERS_VIEWED})
    html = page.content.decode()
    link = f"/audit/export/?actor=fac-lantern&amp;action={ANSWERS_VIEWED}&amp;format=csv"
    assert f'href="{link}"' in html
    response = admin_client.get(link.replace("&amp;", "&"))
    rows = csv_rows(b"".join(response.streaming_content).decode())
    assert [int(row["seq"]) for row in rows] == [first.seq, second.seq]


# --- tampering is caught offline --------------------------------------------------------------


def export_file(client, tmp_path, fmt="jsonl", **params) -> Path:
    _, content = download(client, format=fmt, **params)
    path = tmp_path / f"audit-log.{fmt}"
    path.write_text(content, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("action", int(Action.LOGIN_SUCCEEDED)),
        ("actor", 99999),
        ("target_id", "1"),
        ("ip", "192.0.2.1"),
        ("created_at", "2020-01-01T00:00:00+00:00"),
        ("extra", {"n": 1}),
    ],
)
def test_a_changed_field_in_a_json_lines_export_is_named(
    world, admin_client, looks, tmp_path, field, value
):
    path = export_file(admin_client, tmp_path, actor="fac-lantern")
    lines = path.read_text().splitlines()
    row = json.loads(lines[2])
    assert row[field] != value
    row[field] = value
    lines[2] = json.dumps(row, sort_keys=True, separators=(",", ":"))
    path.write_text("\n".join(lines) + "\n")

    result = verify(path)

    assert result.returncode == 1
    assert result.stdout == ""
    assert one_line(result.stderr) == f"Row {row['seq']} does not match its hash (altered)."


def test_a_changed_field_in_a_csv_export_is_named(world, admin_client, looks, tmp_path):
    first, second = looks
    path = export_file(admin_client, tmp_path, "csv", action=ANSWERS_VIEWED)
    content = path.read_text()
    rows = csv_rows(content)
    assert rows[-1]["seq"] == str(second.seq)
    rows[-1]["subject"] = str(world.wren.pk)  # "it was someone else's application"
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(out.getvalue())

    result = verify(path)

    assert result.returncode == 1
    assert one_line(result.stderr) == f"Row {second.seq} does not match its hash (altered)."


def test_reordered_or_duplicated_rows_are_caught(world, admin_client, looks, tmp_path):
    path = export_file(admin_client, tmp_path)
    lines = path.read_text().splitlines()
    seqs = [json.loads(line)["seq"] for line in lines]

    swapped = lines[:3] + [lines[4], lines[3]] + lines[5:]
    path.write_text("\n".join(swapped) + "\n")
    result = verify(path)
    assert result.returncode == 1
    assert one_line(result.stderr) == f"Row {seqs[3]} comes after row {seqs[4]} (out of order)."

    doubled = lines[:4] + [lines[3]] + lines[4:]
    path.write_text("\n".join(doubled) + "\n")
    result = verify(path)
    assert result.returncode == 1
    assert one_line(result.stderr) == f"Row {seqs[3]} comes after row {seqs[3]} (out of order)."


def test_a_removed_row_inside_a_consecutive_range_breaks_the_chain(
    world, admin_client, looks, tmp_path
):
    # A filtered export has gaps by design; a spliced row is still caught because a
    # row's prev_hash is covered by its own hash.
    path = export_file(admin_client, tmp_path)
    lines = path.read_text().splitlines()
    removed = json.loads(lines[3])
    following = json.loads(lines[4])
    following["seq"] = removed["seq"]  # renumbered to hide the gap
    lines[4] = json.dumps(following)
    path.write_text("\n".join(lines[:3] + lines[4:]) + "\n")

    result = verify(path)

    assert result.returncode == 1
    assert one_line(result.stderr) == f"Row {removed['seq']} does not match its hash (altered)."


def test_an_unreadable_line_is_named_not_a_traceback(world, admin_client, looks, tmp_path):
    path = export_file(admin_client, tmp_path)
    lines = path.read_text().splitlines()
    lines[1] = lines[1][:40]  # cut short
    path.write_text("\n".join(lines) + "\n")

    result = verify(path)

    assert result.returncode == 1
    assert one_line(result.stderr).startswith("Line 2 cannot be read")


def test_it_needs_the_right_key_and_a_file(world, admin_client, looks, tmp_path):
    path = export_file(admin_client, tmp_path)
    first_seq = json.loads(path.read_text().splitlines()[0])["seq"]

    no_key = verify(path, key="")
    assert no_key.returncode == 2
    assert one_line(no_key.stderr) == "Set AUDIT_KEY in the environment."

    wrong_key = verify(path, key="not-the-audit-key-" * 3)
    assert wrong_key.returncode == 1
    assert one_line(wrong_key.stderr) == f"Row {first_seq} does not match its hash (altered)."

    no_file = verify(path, args=[])
    assert no_file.returncode == 2
    assert one_line(no_file.stderr).startswith("Usage:")


# --- exporting is audited, and admins only ----------------------------------------------------


def test_exporting_is_itself_recorded(world, admin_client, looks):
    _, filtered = download(admin_client, actor="fac-lantern", action=ANSWERS_VIEWED, format="csv")
    _, everything = download(admin_client, format="jsonl")

    exported = events(Action.AUDIT_LOG_EXPORTED)
    assert [(e.actor_id, e.ip, e.extra) for e in exported] == [
        (
            world.admin.pk,
            "127.0.0.1",
            {"filters": ["actions", "actor_id"], "rows": 2, "format": "csv"},
        ),
        (
            world.admin.pk,
            "127.0.0.1",
            {"filters": [], "rows": len(jsonl_rows(everything)), "format": "jsonl"},
        ),
    ]
    # The file is the log as it stood when the export was asked for: the count recorded
    # is what the file holds, and it does not hold its own export event.
    assert jsonl_rows(everything)[-1]["seq"] == exported[1].seq - 1


def test_a_non_admin_cannot_export(world, client, looks):
    facilitator = verified_client(world.lantern.user)
    member = member_client(world.river.user)
    for who in (client, facilitator, member):
        response = who.get("/audit/export/", {"format": "jsonl"})
        # Anonymous: sent to sign in; signed-in non-admins: the 404 of a missing page.
        assert response.status_code == (302 if who is client else 404)
        assert "Content-Disposition" not in response
    unverified = member_client(world.admin)
    response = unverified.get("/audit/export/", {"format": "csv"})
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/"
    assert events(Action.AUDIT_LOG_EXPORTED) == []


def test_bad_export_requests_export_nothing(world, admin_client, looks):
    bad_filter = admin_client.get("/audit/export/", {"ip": "not-an-ip", "format": "csv"})
    assert bad_filter.status_code == 400
    assert "Enter a valid IPv4 or IPv6 address." in bad_filter.content.decode()
    bad_format = admin_client.get("/audit/export/", {"format": "xlsx"})
    assert bad_format.status_code == 404
    assert events(Action.AUDIT_LOG_EXPORTED) == []
