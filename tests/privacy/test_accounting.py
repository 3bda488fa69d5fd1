"""The accounting of disclosures (issue 23.3): every disclosure (consented, legal, and the
break-glass reveals) in the member's "Who has seen my data" in plain words (who, to whom,
what, why, when), in the export and in the admins' console and access review; nothing of
it visible to other members or other groups' facilitators."""

import json

import pytest
from django.test import RequestFactory
from django.urls import reverse

from audit.events import Action
from moderation import services as moderation_services
from privacy import services
from tests.database import events
from tests.privacy.conftest import PURPOSE, RECIPIENT, approve, ask

pytestmark = pytest.mark.django_db

REVEAL_REASON = "River said they were not safe tonight; we have a duty to call someone."


def shared_section(page: str) -> str:
    return page.split('id="shared-heading"')[1].split('id="access-heading"')[0]


def disclose_all_three_ways(scene):
    consent = ask(scene, items=["attendance"])
    approve(consent)
    package = services.consent_package_produce(actor=scene.facilitator.user, consent=consent)
    moderation_services.contact_reveal(
        membership=scene.river, actor=scene.facilitator.user, reason=REVEAL_REASON
    )
    legal = services.legal_disclosure_make(
        actor=scene.admin,
        subject=scene.river.user,
        group=None,
        items=["contact_details"],
        legal_basis="safeguarding",
        basis_other="",
        reference="Local authority ref SG-77",
        recipient="Northshire Children's Services",
        description="Contact details.",
        summary=None,
        restricted_until=None,
    )
    return package, legal


def test_every_disclosure_reads_in_plain_words_in_who_has_seen_my_data(scene):
    package, legal = disclose_all_three_ways(scene)
    page = scene.client(scene.river.user).get("/account/activity/").content.decode()
    shared = shared_section(page).replace("&#x27;", "'")

    # With consent: who (by the name River knows), to whom, what, why.
    assert "Lantern, a facilitator of Evening Grief Circle" in shared
    assert RECIPIENT in shared
    assert "meetings attended" in shared
    assert f"With your consent: {PURPOSE}" in shared
    assert package.disclosure.package_sha256[:10] in shared
    # Break glass: the reason written is the why.
    assert "emergency contact" in shared and REVEAL_REASON in shared
    # Required by law.
    assert "Northshire Children's Services" in shared
    assert "A safeguarding duty" in shared and "SG-77" in shared
    # Newest first: the legal one was made last.
    assert shared.index("Northshire") < shared.index(RECIPIENT)


def test_the_export_includes_the_accounting_and_the_requests(scene):
    disclose_all_three_ways(scene)
    data = services.account_export(
        user=scene.river.user, request=RequestFactory().post("/account/export/")
    )
    lines = data["information_shared_outside_this_site"]
    assert {line["kind"] for line in lines} == {"consented", "legal", "break_glass"}
    consented = next(line for line in lines if line["kind"] == "consented")
    assert consented["to_whom"] == RECIPIENT and consented["file_sha256"]
    (request,) = data["requests_to_share_your_information"]
    assert request["recipient"] == RECIPIENT and request["status"] == "approved"
    json.dumps(data)  # the download is this document as JSON


def test_other_members_and_other_groups_facilitators_never_see_it(scene):
    disclose_all_three_ways(scene)
    secrets = (RECIPIENT, "Northshire", REVEAL_REASON, "SG-77")
    # Fern (same group) and Heron (other group): their own pages say nothing of River's.
    for person in (scene.fern.user, scene.other_member.user):
        client = scene.client(person)
        pages = "".join(
            client.get(path).content.decode()
            for path in ("/account/activity/", "/account/consents/", "/account/")
        )
        assert not any(secret in pages for secret in secrets)
        assert "Nothing about you has been shared outside this site." in pages
    # Beacon facilitates the other group: River's group's pages are not there for them,
    # and their own group's page lists nothing of River's.
    beacon = scene.client(scene.other_facilitator.user)
    assert (
        beacon.get(reverse("disclosures:group_consents", args=[scene.group.slug])).status_code
        == 404
    )
    own = beacon.get(reverse("disclosures:group_consents", args=[scene.other_group.slug]))
    assert not any(secret in own.content.decode() for secret in secrets)
    # The group's own facilitators see the consented packages, never the legal one.
    lantern = scene.client(scene.facilitator.user)
    page = lantern.get(reverse("disclosures:group_consents", args=[scene.group.slug]))
    text = page.content.decode()
    assert RECIPIENT in text and "Northshire" not in text


def test_every_step_is_an_audit_event_and_the_console_describes_it(scene):
    disclose_all_three_ways(scene)
    consent = ask(scene, items=["summary"], summary="A short note.")
    services.consent_decline(actor=scene.river.user, consent=consent)
    for action in (
        Action.CONSENT_REQUESTED,
        Action.CONSENT_APPROVED,
        Action.CONSENT_DECLINED,
        Action.DISCLOSURE_PACKAGE_PRODUCED,
        Action.CONTACT_DETAILS_REVEALED,
        Action.LEGAL_DISCLOSURE_MADE,
        Action.DISCLOSURE_MEMBER_NOTIFIED,
    ):
        assert events(action, subject_id=scene.river.user_id), action
    # No text of the request in the log: ids, kinds and the hash only.
    for event in events(Action.CONSENT_REQUESTED) + events(Action.DISCLOSURE_PACKAGE_PRODUCED):
        assert RECIPIENT not in json.dumps(event.extra)
        assert PURPOSE not in json.dumps(event.extra)

    admin = scene.client(scene.admin)
    console = admin.get("/audit/", {"subject": "member-river"}).content.decode()
    assert "fac-lantern produced a disclosure package about member-river" in console
    assert "made a disclosure required by law about member-river" in console
    review = admin.get(reverse("disclosures:access_review"), {"handle": "member-river"})
    text = review.content.decode()
    assert RECIPIENT in text and REVEAL_REASON in text and "Northshire" in text


def test_the_access_review_answers_an_unknown_handle_with_a_message(scene):
    response = scene.client(scene.admin).get(
        reverse("disclosures:access_review"), {"handle": "nobody-at-all"}
    )
    assert response.status_code == 200
    assert "No account has that login handle." in response.content.decode()
