"""Fixtures for the breach-response tests: the audit console's world (an admin, two
groups with their facilitators, a member, applicants; tests/audit/conftest.py) and an
incident about Lantern's account and Lantern's group, opened through the service."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone

from console import services
from console.models import Incident
from tests.audit.conftest import (  # noqa: F401 - fixtures and helpers for the test modules
    World,
    _cheap_argon2,
    build_world,
    clock_shifted,
    text_of,
    verified_client,
)
from tests.database import events  # noqa: F401 - for the test modules
from tests.factories import sign_in


def open_incident(world: World, **overrides) -> Incident:
    fields = {
        "title": "Lantern's account taken over",
        "description": "Forty failed sign-ins, then one from an address never seen before.",
        "detected_at": timezone.now(),
        "users": [world.lantern.user],
        "groups": [world.group],
    }
    fields.update(overrides)
    return services.incident_open(actor=world.admin, ip=None, **fields)


@pytest.fixture
def world(db) -> World:
    return build_world()


@pytest.fixture
def admin_client(world) -> Client:
    """The admin, signed in with password and authenticator code."""
    return verified_client(world.admin)


@pytest.fixture
def incident(world) -> Incident:
    return open_incident(world)


def incident_urls(incident: Incident) -> list[str]:
    """Every page of the incident (GET shows it; POST takes its step)."""
    base = f"/audit/incidents/{incident.pk}/"
    return [
        base,
        f"{base}sign-out/",
        f"{base}renew-credentials/",
        f"{base}hold-meetings/",
        f"{base}lift-hold/",
        f"{base}rotate-keys/",
        f"{base}rotate-keys/step/",
        f"{base}notify/",
        f"{base}regulator/",
        f"{base}close/",
        f"{base}report/",
    ]


def client_of(user, *, verified: bool = True) -> Client:
    return sign_in(Client(), user, verified=verified)
