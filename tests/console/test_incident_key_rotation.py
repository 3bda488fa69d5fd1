"""An incident's key rotation: ``rotate_encryption_keys``' work, run from the incident's
page one batch per request, with its progress; resumable, recorded, and afterwards the
old key reads nothing.

These tests commit for real (transaction=True), like the command's: each batch commits."""

from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.core.management import call_command
from django.test import override_settings

from accounts.models import User
from audit.events import Action
from console import services
from console.models import KeyRotation
from supportgroups.crypto import DecryptionError, count_encrypted_rows
from tests.console.conftest import events, open_incident, text_of
from tests.factories import make_person

pytestmark = pytest.mark.django_db(transaction=True)

JSON = {"HTTP_ACCEPT": "application/json"}


def verify_audit_log() -> str:
    out = StringIO()
    call_command("verify_audit_log", stdout=out, stderr=StringIO())
    return out.getvalue().splitlines()[0]


def test_the_page_runs_the_rotation_to_the_end_and_the_old_key_reads_nothing(world, admin_client):
    old, new = settings.FIELD_ENCRYPTION_KEYS[0], Fernet.generate_key().decode()
    incident = open_incident(world)
    url = f"/audit/incidents/{incident.pk}/rotate-keys/"
    with override_settings(FIELD_ENCRYPTION_KEYS=[new, old]):
        page = admin_client.get(url)
        assert "Keys configured now: 2." in text_of(page)
        response = admin_client.post(url, {"confirm": "on"})
        assert response["Location"] == url
        rotation = KeyRotation.objects.get()
        assert rotation.total_rows == count_encrypted_rows()
        assert "0 of" in text_of(admin_client.get(url))

        states = []
        while not states or not states[-1]["done"]:
            states.append(admin_client.post(f"{url}step/", **JSON).json())
            assert len(states) < 50
        final = states[-1]
        assert final["seen"] == final["total"] >= rotation.total_rows
        assert final["changed"] > 0
        assert "re-encrypted with the first key" in text_of(admin_client.get(url))
        # Asking again does nothing more.
        assert admin_client.post(f"{url}step/", **JSON).json() == final

        [started] = events(Action.INCIDENT_KEY_ROTATION_STARTED)
        [rotated] = events(Action.ENCRYPTION_KEYS_ROTATED)
        assert (started.target_id, rotated.target_id) == (str(incident.pk), str(incident.pk))
        assert rotated.extra == {"rows_reencrypted": final["changed"], "batch_size": 500}
        assert "The encryption keys were rotated" in text_of(
            admin_client.get(f"/audit/incidents/{incident.pk}/")
        )

    with override_settings(FIELD_ENCRYPTION_KEYS=[new]):
        assert User.objects.get(pk=world.lantern.user.pk).recovery_email == (
            "lantern.private@example.org"
        )
        assert verify_audit_log().startswith("Audit log intact")
    with override_settings(FIELD_ENCRYPTION_KEYS=[old]), pytest.raises(DecryptionError):
        User.objects.get(pk=world.lantern.user.pk).recovery_email  # noqa: B018


def test_batches_move_the_progress_on_and_a_second_tab_does_no_batch_twice(world):
    for n in range(5):
        make_person(f"person-{n}", email=f"person{n}@mail.test", phone=f"+1 555 0100{n}")
    old, new = settings.FIELD_ENCRYPTION_KEYS[0], Fernet.generate_key().decode()
    incident = open_incident(world)
    with override_settings(FIELD_ENCRYPTION_KEYS=[new, old]):
        rotation = services.incident_key_rotation_start(
            actor=world.admin, incident=incident, ip=None
        )
        # Starting again (another tab) continues the same rotation.
        assert (
            services.incident_key_rotation_start(actor=world.admin, incident=incident, ip=None)
            == rotation
        )
        seen = [0]
        while True:
            rotation = services.incident_key_rotation_step(
                actor=world.admin, rotation=rotation, batch_size=2
            )
            assert rotation.rows_seen > seen[-1] or rotation.finished_at
            seen.append(rotation.rows_seen)
            if rotation.finished_at:
                break
        # Every row counted once (the last batch's own audit row comes after it).
        assert count_encrypted_rows() - 1 <= rotation.rows_seen <= count_encrypted_rows()
        assert len(seen) > 5
        [rotated] = events(Action.ENCRYPTION_KEYS_ROTATED)
        assert rotated.extra == {"rows_reencrypted": rotation.rows_changed, "batch_size": 2}
        assert rotation.rows_changed >= 5 + 3  # the five people and the world's three
        # The command finds nothing left.
        out = StringIO()
        call_command("rotate_encryption_keys", stdout=out, stderr=StringIO())
        assert out.getvalue().strip().endswith("Re-encrypted 0 rows with the first key.")


def test_without_javascript_the_button_does_one_batch_and_comes_back(world, admin_client):
    incident = open_incident(world)
    url = f"/audit/incidents/{incident.pk}/rotate-keys/"
    unconfirmed = admin_client.post(url, {})
    assert unconfirmed.status_code == 400
    assert "Tick the box to confirm." in text_of(unconfirmed)
    assert not KeyRotation.objects.exists()
    admin_client.post(url, {"confirm": "on"})
    response = admin_client.post(f"{url}step/")
    assert response.status_code == 302
    assert response["Location"] == url
    assert KeyRotation.objects.get().rows_seen > 0
