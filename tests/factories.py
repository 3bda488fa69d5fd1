"""Small builders for test data. They call the app's own code, never raw inserts."""

import time

from django.contrib.auth.hashers import Argon2PasswordHasher

from audit.events import Action
from audit.models import Event
from audit.services import record_event


def make_user(
    username,
    *,
    email=None,
    phone=None,
    emergency_contact=None,
    password=None,
):
    """A user with optional contact details. No password by default: Argon2 is slow."""
    from accounts.models import User

    user = User.objects.create_user(username=username, email=email, password=password)
    if phone is not None or emergency_contact is not None:
        user.phone = phone
        user.emergency_contact = emergency_contact
        user.save(update_fields=["phone", "emergency_contact"])
    return user


def make_events(count, *, ip=None, action=Action.LOGIN_SUCCEEDED, **kwargs) -> list[Event]:
    """``count`` chained audit events; ``ip`` may be a string or a callable of the index."""
    events = []
    for i in range(count):
        address = ip(i) if callable(ip) else ip
        events.append(record_event(action=action, ip=address, extra={"n": i}, **kwargs))
    return events


def totp_device(user):
    """A confirmed authenticator app for the person (made once, reused)."""
    from accounts.models import TOTPDevice

    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    return device or TOTPDevice.objects.create(user=user, name="Phone", confirmed=True)


def totp_code(device) -> str:
    """The authenticator's current code, usable even if this step's code was just used."""
    from django_otp.oath import TOTP

    from accounts.models import TOTPDevice

    device = TOTPDevice.objects.get(pk=device.pk)
    # A code is accepted once per 30 s step; a second sign-in in the same step (another
    # client of the same person) needs what time passing would do.
    step = int(time.time()) // TOTPDevice.STEP
    if device.last_t >= step - 1:
        TOTPDevice.objects.filter(pk=device.pk).update(last_t=step - 2)
    return f"{TOTP(bytes.fromhex(device.key)).token():06d}"


class CheapArgon2PasswordHasher(Argon2PasswordHasher):
    """Still Argon2id, with parameters cheap enough for a suite that signs in a lot (the
    live server in tests/e2e verifies it too: the parameters travel in the hash).

    Production's cost (Django's defaults, most of a second per hash here) is checked in
    tests/accounts; everywhere else it would only make the suite slow.
    """

    time_cost = 1
    memory_cost = 1024
    parallelism = 1


CHEAP_PASSWORD_HASHERS = [f"{__name__}.CheapArgon2PasswordHasher"]
