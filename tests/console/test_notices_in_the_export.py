"""A member's export holds what a breach response kept about them: the security notices
they were sent (in the words they were shown, never the incident's own text) and whether
an admin requires them to choose a new password and set up two-factor again. Security
notices live in console, beside privacy in the layers: console registers them as a part
of every export (supportgroups.exports)."""

import json

import pytest
from django.test import RequestFactory

from accounts.models import User
from console import services
from console.models import NOTICE_STEP_WORDS, SecurityNotice
from privacy.services import account_export
from supportgroups import exports

pytestmark = pytest.mark.django_db


def export_of(user: User) -> dict:
    request = RequestFactory().post("/account/export/", REMOTE_ADDR="198.51.100.7")
    return account_export(user=User.objects.get(pk=user.pk), request=request)


def test_the_export_holds_the_security_notices_and_the_renewal_flags(
    world, incident, django_capture_on_commit_callbacks
):
    services.incident_require_credential_renewal(actor=world.admin, incident=incident, ip=None)
    # The emails go after commit; a notice is 'emailed' once the mail server took it.
    with django_capture_on_commit_callbacks(execute=True):
        services.incident_notify(actor=world.admin, incident=incident, ip=None)
    services.security_notice_read(
        actor=world.river.user,
        notice=SecurityNotice.objects.get(user=world.river.user),
        ip=None,
    )

    river = export_of(world.river.user)
    (notice,) = river["security_notices"]
    assert notice["what_was_done"] == [NOTICE_STEP_WORDS["credentials_renewed"]]
    assert notice["incident_detected"] == incident.detected_at.isoformat()
    assert notice["read"] is not None and notice["also_emailed"] is False
    assert river["account"]["must_choose_a_new_password"] is False
    assert river["account"]["must_set_up_two_factor_again"] is False
    # The incident's own words are the admins' notes, not the member's data.
    assert incident.title not in json.dumps(river)
    assert incident.description not in json.dumps(river)

    lantern = export_of(world.lantern.user)
    assert lantern["account"]["must_choose_a_new_password"] is True
    assert lantern["account"]["must_set_up_two_factor_again"] is True
    (notice,) = lantern["security_notices"]
    assert notice["read"] is None and notice["also_emailed"] is True


def test_someone_never_told_has_no_notices_in_their_export(world, incident):
    services.incident_notify(actor=world.admin, incident=incident, ip=None)
    assert export_of(world.heron)["security_notices"] == []


def test_a_part_may_not_replace_the_exports_own_data(world, monkeypatch):
    """A registered part under a key the export already uses ("account") would silently
    replace that data: the export refuses it instead."""
    monkeypatch.setattr(exports, "_parts", dict(exports._parts))  # this test's registry
    exports.export_part_register("account", lambda user: {"replaced": True})
    with pytest.raises(ValueError, match="account"):
        export_of(world.river.user)
