"""accounts.middleware.OTPMiddleware: django-otp's, its device read compiled once per
device model. The device is read on every request and must still be there, confirmed and
the person's own."""

import pytest
from django.contrib.sessions.middleware import SessionMiddleware
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django_otp import DEVICE_ID_SESSION_KEY

from accounts.middleware import OTPMiddleware
from accounts.models import BackupCodeDevice, TOTPDevice
from tests.factories import make_user, totp_device

pytestmark = pytest.mark.django_db


def verified_request(user, persistent_id: str):
    request = RequestFactory().get("/")
    SessionMiddleware(lambda r: None).process_request(request)
    request.session[DEVICE_ID_SESSION_KEY] = persistent_id
    request.user = user
    OTPMiddleware(lambda r: None)(request)
    return request


def test_the_sessions_device_is_read_with_its_secret_in_one_statement():
    user = make_user("otp-read")
    device = totp_device(user)
    for _ in range(2):  # (the second from the SQL compiled by the first)
        request = verified_request(user, device.persistent_id)
        with CaptureQueriesContext(connection) as queries:
            assert request.user.is_verified()
        assert len(queries) == 1
        assert isinstance(request.user.otp_device, TOTPDevice)
        assert request.user.otp_device.pk == device.pk
        assert request.user.otp_device.key == device.key  # decrypted, as the ORM does
        assert request.session[DEVICE_ID_SESSION_KEY] == device.persistent_id
    backup = BackupCodeDevice.objects.create(user=user, name="Backup codes", confirmed=True)
    assert verified_request(user, backup.persistent_id).user.otp_device == backup


def test_a_removed_device_ends_the_standing_at_once():
    user = make_user("otp-removed")
    device = totp_device(user)
    assert verified_request(user, device.persistent_id).user.is_verified()
    persistent_id = device.persistent_id
    TOTPDevice.objects.filter(pk=device.pk).delete()
    request = verified_request(user, persistent_id)
    assert not request.user.is_verified()
    assert DEVICE_ID_SESSION_KEY not in request.session


def test_an_unconfirmed_device_ends_the_standing_at_once():
    user = make_user("otp-unconfirmed")
    device = totp_device(user)
    assert verified_request(user, device.persistent_id).user.is_verified()
    TOTPDevice.objects.filter(pk=device.pk).update(confirmed=False)
    request = verified_request(user, device.persistent_id)
    assert not request.user.is_verified()
    assert DEVICE_ID_SESSION_KEY not in request.session


def test_someone_elses_device_does_not_verify():
    owner, other = make_user("otp-owner"), make_user("otp-other")
    request = verified_request(other, totp_device(owner).persistent_id)
    assert not request.user.is_verified()


@pytest.mark.parametrize(
    "persistent_id",
    [
        "nonsense",
        "accounts.totpdevice/x",
        "accounts.nosuchdevice/1",
        "accounts.user/1",
        "a/b/1",
        # Beyond the id column's range: the queryset finds nothing, the driver would fail.
        "accounts.totpdevice/99999999999999999999",
    ],
)
def test_a_persistent_id_not_understood_reads_as_no_device(persistent_id):
    user = make_user("otp-garbage")
    totp_device(user)
    request = verified_request(user, persistent_id)
    assert not request.user.is_verified()
    assert DEVICE_ID_SESSION_KEY not in request.session
