"""Consent requests (issue 23.1): a facilitator asks, the member reads exactly what would be
shared and answers, and only an approved, unexpired, not-withdrawn consent lets the
facilitator make the package: a file with exactly the approved items, its SHA-256 on the
disclosure and in the audit event."""

import hashlib
import json
import re
from datetime import timedelta

import pytest
from channels.testing import WebsocketCommunicator
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from audit.events import Action
from privacy import services
from privacy.models import ConsentRequest, ConsentStatus, Disclosure
from privacy.packages import content_sha256
from supportgroups.asgi import application
from tests.database import events
from tests.privacy.conftest import (
    PURPOSE,
    RECIPIENT,
    RIVER_EMERGENCY,
    RIVER_PHONE,
    approve,
    ask,
    clock_shifted,
)
from tests.sockets import (  # noqa: F401 - fixtures for the socket test
    _channel_layer_per_test,
    close_worker_connections,
    cookie_of,
    run,
    socket_headers,
)

pytestmark = pytest.mark.django_db

SUMMARY = "River has attended steadily and spoke about sleeping badly since March."


def ask_page(scene, membership=None):
    membership = membership or scene.river
    return reverse("disclosures:consent_new", args=[scene.group.slug, membership.pk])


def package_url(scene, consent):
    return reverse("disclosures:consent_package", args=[consent.group.slug, consent.pk])


def make_package(scene, consent, client=None):
    client = client or scene.client(scene.facilitator.user)
    return client.post(package_url(scene, consent))


# --- asking -------------------------------------------------------------------------------


def test_a_facilitator_asks_and_the_member_reads_exactly_what_would_be_shared(
    scene, django_capture_on_commit_callbacks, mailoutbox
):
    lantern = scene.client(scene.facilitator.user)
    with django_capture_on_commit_callbacks(execute=True):
        response = lantern.post(
            ask_page(scene),
            {
                "items": ["contact_details", "screening_answers", "attendance", "summary"],
                "summary": SUMMARY,
                "recipient": RECIPIENT,
                "purpose": PURPOSE,
                "valid_until": (timezone.localdate() + timedelta(days=30)).isoformat(),
            },
        )
    assert response.status_code == 302
    consent = ConsentRequest.objects.get()
    assert consent.status == ConsentStatus.PENDING
    assert consent.requested_by == scene.facilitator

    # The request, the purpose and the summary are encrypted at rest.
    with connection.cursor() as cursor:
        cursor.execute("SELECT recipient, purpose, summary FROM privacy_consentrequest")
        stored = " ".join(cursor.fetchone())
    for secret in (RECIPIENT, PURPOSE, SUMMARY, "Patel"):
        assert secret not in stored

    # The email tells River there is something to read, naming no group and nothing of it.
    (mail,) = mailoutbox
    assert mail.to == ["river@example.org"]
    for word in (scene.group.name, "Grief", RECIPIENT, PURPOSE, "Lantern"):
        assert word not in mail.subject + mail.body

    page = scene.client(scene.river.user).get(reverse("account_consent", args=[consent.pk]))
    text = page.content.decode()
    for shown in (RECIPIENT, PURPOSE, RIVER_PHONE, SUMMARY, "Tuesday circle", "Lantern"):
        assert shown in text
    assert "Sam Okafor (sister), 07700 900456" in text.replace("&#x27;", "'")
    assert "My answer to question" in text  # the intake answers, as River wrote them

    (requested,) = events(Action.CONSENT_REQUESTED)
    assert (requested.actor_id, requested.subject_id, requested.group_id) == (
        scene.facilitator.user_id,
        scene.river.user_id,
        scene.group.pk,
    )
    assert requested.extra["items"] == [
        "contact_details",
        "screening_answers",
        "attendance",
        "summary",
    ]


def test_bad_input_re_renders_the_form_with_its_messages(scene):
    lantern = scene.client(scene.facilitator.user)
    response = lantern.post(
        ask_page(scene),
        {
            "items": ["summary"],
            "summary": "",
            "recipient": "",
            "purpose": PURPOSE,
            "valid_until": (timezone.localdate() - timedelta(days=1)).isoformat(),
        },
    )
    assert response.status_code == 200
    text = response.content.decode()
    assert "There is a problem" in text
    assert "Write the summary" in text
    assert "This field is required" in text  # the recipient
    assert ConsentRequest.objects.count() == 0

    # The date is checked by the service: the message lands on its field.
    response = lantern.post(
        ask_page(scene),
        {
            "items": ["attendance"],
            "recipient": RECIPIENT,
            "purpose": PURPOSE,
            "valid_until": (timezone.localdate() - timedelta(days=1)).isoformat(),
        },
    )
    assert "Choose a date from today" in response.content.decode()
    assert ConsentRequest.objects.count() == 0
    assert not events(Action.CONSENT_REQUESTED)


def test_a_facilitator_cannot_ask_about_another_groups_member(scene):
    lantern = scene.client(scene.facilitator.user)
    # Heron is in the other group: through Lantern's own group the page does not exist.
    assert lantern.get(ask_page(scene, scene.other_member)).status_code == 404
    # And the service refuses whatever the page said.
    with pytest.raises(services.PrivacyError) as refused:
        ask(scene, membership=scene.other_member)
    assert refused.value.code == "not_facilitator"
    # A member (wrong role) cannot ask either.
    with pytest.raises(services.PrivacyError):
        services.consent_request(
            actor=scene.fern.user,
            membership=scene.river,
            items=["attendance"],
            recipient=RECIPIENT,
            purpose=PURPOSE,
            summary=None,
            valid_until=timezone.localdate(),
        )
    assert ConsentRequest.objects.count() == 0


# --- answering ----------------------------------------------------------------------------


def test_the_member_approves_on_the_page_and_only_what_they_read(scene):
    consent = ask(scene, items=["contact_details"])
    river = scene.client(scene.river.user)
    url = reverse("account_consent", args=[consent.pk])
    shown = content_sha256(services.consent_preview(consent))

    # The records changed after the page was drawn: River reads it again first.
    user = scene.river.user
    user.phone = "+44 7700 900999"
    user.save(update_fields=["phone"])
    response = river.post(url, {"answer": "approve", "shown": shown})
    assert response.status_code == 200
    text = response.content.decode()
    assert "has changed since you opened this page" in text
    assert "+44 7700 900999" in text  # what would be shared now
    consent.refresh_from_db()
    assert consent.status == ConsentStatus.PENDING

    # The page it sent back carries the fingerprint of what it shows now.
    shown = re.search(r'name="shown" value="([0-9a-f]{64})"', text).group(1)
    assert river.post(url, {"answer": "approve", "shown": shown}).status_code == 302
    consent.refresh_from_db()
    assert consent.status == ConsentStatus.APPROVED
    assert consent.approved_items["contact_details"]["phone"] == "+44 7700 900999"
    (approved,) = events(Action.CONSENT_APPROVED)
    assert approved.actor_id == approved.subject_id == user.pk
    assert approved.extra["content_sha256"] == shown


def test_the_member_declines_and_nothing_can_be_made(scene):
    consent = ask(scene)
    river = scene.client(scene.river.user)
    response = river.post(
        reverse("account_consent", args=[consent.pk]), {"answer": "decline", "shown": "x"}
    )
    assert response.status_code == 302
    consent.refresh_from_db()
    assert consent.status == ConsentStatus.DECLINED
    assert len(events(Action.CONSENT_DECLINED)) == 1

    response = make_package(scene, consent)
    assert response.status_code == 302
    assert Disclosure.objects.count() == 0
    assert not events(Action.DISCLOSURE_PACKAGE_PRODUCED)


def test_only_the_member_may_answer(scene):
    consent = ask(scene)
    for someone in (scene.fern.user, scene.facilitator.user, scene.other_facilitator.user):
        with pytest.raises(services.PrivacyError) as refused:
            services.consent_decline(actor=someone, consent=consent)
        assert refused.value.code == "not_yours"
        page = scene.client(someone).get(reverse("account_consent", args=[consent.pk]))
        assert page.status_code == 404


# --- the package --------------------------------------------------------------------------


def test_the_package_holds_exactly_the_consented_items_and_its_hash_is_in_the_audit_record(
    scene,
):
    consent = ask(scene, items=["attendance", "summary"], summary=SUMMARY)
    approve(consent)

    response = make_package(scene, consent)
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    data = response.content
    document = json.loads(data)

    assert set(document["items"]) == {"attendance", "summary"}
    assert document["items"]["summary"] == SUMMARY
    assert document["items"]["attendance"][0]["meeting"] == "Tuesday circle"
    assert document["disclosure"]["recipient"] == RECIPIENT
    assert document["disclosure"]["purpose"] == PURPOSE
    # Nothing River did not agree to share.
    text = data.decode()
    for private in (RIVER_PHONE, RIVER_EMERGENCY, "river@example.org", "My answer to question"):
        assert private not in text
    assert "member-river" not in text  # the login handle is never in a consented package

    digest = hashlib.sha256(data).hexdigest()
    disclosure = Disclosure.objects.get()
    (produced,) = events(Action.DISCLOSURE_PACKAGE_PRODUCED)
    assert disclosure.package_sha256 == digest == produced.extra["sha256"]
    assert (produced.actor_id, produced.subject_id, produced.group_id) == (
        scene.facilitator.user_id,
        scene.river.user_id,
        scene.group.pk,
    )
    assert produced.target_id == str(disclosure.pk)
    assert disclosure.items == ["attendance", "summary"]


def test_no_package_without_an_approved_consent(scene):
    pending = ask(scene)
    lantern = scene.client(scene.facilitator.user)
    response = make_package(scene, pending, lantern)
    assert response.status_code == 302
    lantern_page = lantern.get(response["Location"])
    assert "The member has not given this consent." in lantern_page.content.decode()
    with pytest.raises(services.PrivacyError) as refused:
        services.consent_package_produce(actor=scene.facilitator.user, consent=pending)
    assert refused.value.code == "no_consent"
    assert Disclosure.objects.count() == 0


def test_no_package_once_the_consent_has_expired(scene):
    consent = ask(scene, days=3)
    approve(consent)
    # Three days later it still counts (the last day is included)...
    with clock_shifted(timedelta(days=3)):
        assert make_package(scene, consent).status_code == 200
    # ...and the day after, it no longer does.
    with clock_shifted(timedelta(days=4)):
        with pytest.raises(services.PrivacyError) as refused:
            services.consent_package_produce(actor=scene.facilitator.user, consent=consent)
        assert refused.value.code == "consent_expired"
    assert Disclosure.objects.count() == 1


def test_a_withdrawn_consent_stops_the_next_package(scene):
    consent = ask(scene)
    approve(consent)
    assert make_package(scene, consent).status_code == 200

    river = scene.client(scene.river.user)
    response = river.post(reverse("account_consent_withdraw", args=[consent.pk]))
    assert response.status_code == 302
    consent.refresh_from_db()
    assert consent.status == ConsentStatus.WITHDRAWN
    assert consent.approved_items is None  # the approved copy is gone
    (withdrawn,) = events(Action.CONSENT_WITHDRAWN)
    assert withdrawn.actor_id == scene.river.user_id

    assert make_package(scene, consent).status_code == 302
    with pytest.raises(services.PrivacyError) as refused:
        services.consent_package_produce(actor=scene.facilitator.user, consent=consent)
    assert refused.value.code == "consent_withdrawn"
    assert Disclosure.objects.count() == 1


def test_no_package_for_another_groups_member(scene):
    """Beacon facilitates the other group: River's consent is not theirs to use, through
    either group's address, nor through the service."""
    consent = ask(scene)
    approve(consent)
    beacon = scene.client(scene.other_facilitator.user)
    assert beacon.post(package_url(scene, consent)).status_code == 404
    other_path = reverse("disclosures:consent_package", args=[scene.other_group.slug, consent.pk])
    assert beacon.post(other_path).status_code == 404
    with pytest.raises(services.PrivacyError) as refused:
        services.consent_package_produce(actor=scene.other_facilitator.user, consent=consent)
    assert refused.value.code == "not_facilitator"
    # Nor by a member of the group (the wrong role).
    with pytest.raises(services.PrivacyError):
        services.consent_package_produce(actor=scene.fern.user, consent=consent)
    assert Disclosure.objects.count() == 0


def test_an_unverified_facilitator_session_is_refused(scene):
    consent = ask(scene)
    approve(consent)
    unverified = scene.client(scene.facilitator.user, verified=False)
    response = unverified.post(package_url(scene, consent))
    # The 2FA middleware sends the facilitator to set up or pass the second step first.
    assert response.status_code == 302
    assert response["Location"].startswith("/account/two-factor/")
    assert Disclosure.objects.count() == 0


def test_the_facilitators_page_lists_the_groups_requests_only(scene):
    ask(scene)
    other = services.consent_request(
        actor=scene.other_facilitator.user,
        membership=scene.other_member,
        items=["attendance"],
        recipient="Someone at the other group",
        purpose=PURPOSE,
        summary=None,
        valid_until=timezone.localdate(),
    )
    page = scene.client(scene.facilitator.user).get(
        reverse("disclosures:group_consents", args=[scene.group.slug])
    )
    text = page.content.decode()
    assert RECIPIENT in text and "River" in text
    assert other.recipient not in text and "Heron" not in text


# --- the account socket -------------------------------------------------------------------


class AccountSocket:
    """The account socket every signed-in page opens (/ws/account/)."""

    def __init__(self, cookie):
        self.communicator = WebsocketCommunicator(
            application, "/ws/account/", headers=socket_headers(cookie)
        )

    async def __aenter__(self):
        connected, _ = await self.communicator.connect(timeout=5)
        assert connected
        return self

    async def __aexit__(self, *exc):
        await self.communicator.disconnect(timeout=2)

    async def receive(self) -> dict:
        return await self.communicator.receive_json_from(timeout=2)

    async def nothing(self) -> bool:
        return await self.communicator.receive_nothing(timeout=0.5)


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_worker_connections")
async def test_the_member_gets_a_notice_on_their_account_socket(scene):
    """A request reaches River's open pages at once, in words that name no group, no
    recipient and nothing of what would be shared; nobody else's socket hears of it."""
    river_cookie = await run(lambda: cookie_of(scene.client(scene.river.user)))
    fern_cookie = await run(lambda: cookie_of(scene.client(scene.fern.user)))
    async with AccountSocket(river_cookie) as river, AccountSocket(fern_cookie) as fern:
        await run(ask, scene)
        notice = await river.receive()
        assert notice["type"] == "notice"
        assert notice["url"] == reverse("account_consents")
        for word in (scene.group.name, RECIPIENT, PURPOSE, "Lantern", "River"):
            assert word not in json.dumps(notice)
        assert await fern.nothing()


def test_a_facilitator_removed_since_the_consent_cannot_make_the_package(scene):
    """The service asks the database again: a consent is the group's, not the person's."""
    from groups import services as group_services

    consent = ask(scene)
    approve(consent)
    group_services.facilitator_remove(membership=scene.facilitator, actor=scene.admin)
    with pytest.raises(services.PrivacyError) as refused:
        services.consent_package_produce(actor=scene.facilitator.user, consent=consent)
    assert refused.value.code == "not_facilitator"
    assert Disclosure.objects.count() == 0


def test_a_request_past_its_date_can_no_longer_be_approved(scene):
    consent = ask(scene, days=1)
    shown = content_sha256(services.consent_preview(consent))
    with clock_shifted(timedelta(days=2)):
        with pytest.raises(services.PrivacyError) as refused:
            services.consent_approve(actor=scene.river.user, consent=consent, shown_sha256=shown)
        assert refused.value.code == "consent_expired"
        page = scene.client(scene.river.user).get(reverse("account_consent", args=[consent.pk]))
        assert "I agree to share this" not in page.content.decode()
    consent.refresh_from_db()
    assert consent.status == ConsentStatus.PENDING
