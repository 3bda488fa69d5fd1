"""The admin audit console at /audit/: who may see it, the event stream (newest first, in
plain language, filtered, paged by keyset), the access reviews of a person and of a group,
the chain status, and that every look at the log is itself recorded."""

from datetime import timedelta
from io import StringIO
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.management import call_command
from django.utils import timezone

from audit.describe import describe_for_admin
from audit.events import Action
from audit.models import Event
from audit.selectors import PAGE_SIZE
from audit.services import record_event
from tests.audit.conftest import (
    REVEAL_REASON,
    clock_shifted,
    events,
    last_event,
    make_person,
    member_client,
    open_answers,
    reveal,
    shown_lines,
    shown_seqs,
    text_of,
    totp_device,
    verified_client,
)
from tests.factories import make_events

pytestmark = pytest.mark.django_db

LANTERN_IP = "203.0.113.7"
BEACON_IP = "198.51.100.20"

CONSOLE_URLS = ["/audit/", "/audit/export/?format=jsonl", "/audit/people/", "/audit/signals/"]


def console_urls(world):
    return [*CONSOLE_URLS, f"/audit/groups/{world.group.pk}/"]


@pytest.fixture
def looks(world):
    """Facilitators open intake answers (twice in one group, once in the other) and Lantern
    reveals River's emergency contact. Returns the four events, oldest first."""
    open_answers(world.heron_application, world.lantern, ip=LANTERN_IP)
    first = last_event()
    open_answers(world.wren_application, world.beacon, ip=BEACON_IP)
    beacon = last_event()
    open_answers(world.heron_application, world.lantern, ip=LANTERN_IP)
    second = last_event()
    reveal(world.river, world.lantern, ip=LANTERN_IP)
    revealed = last_event()
    assert [e.action_enum for e in (first, beacon, second, revealed)] == [
        Action.APPLICATION_ANSWERS_VIEWED,
        Action.APPLICATION_ANSWERS_VIEWED,
        Action.APPLICATION_ANSWERS_VIEWED,
        Action.CONTACT_DETAILS_REVEALED,
    ]
    return first, beacon, second, revealed


def get(client, url, **params):
    return client.get(url, params)


# --- who may look -----------------------------------------------------------------------------


def test_it_sends_anonymous_visitors_to_sign_in_like_every_private_page(world, client):
    # Issue 21: an admin whose session timed out must not think the console is gone.
    for url in console_urls(world):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/login/?next="), url
    assert events(Action.AUDIT_LOG_VIEWED) == []
    assert events(Action.AUDIT_LOG_EXPORTED) == []


def test_it_is_not_found_for_a_member(world):
    client = member_client(world.river.user)
    for url in console_urls(world):
        assert client.get(url).status_code == 404, url
    assert events(Action.AUDIT_LOG_VIEWED) == []


def test_it_is_not_found_for_a_verified_facilitator(world):
    client = verified_client(world.lantern.user)
    assert client.get("/account/").status_code == 200  # signed in and verified
    for url in console_urls(world):
        assert client.get(url).status_code == 404, url
    assert events(Action.AUDIT_LOG_VIEWED) == []
    assert events(Action.AUDIT_LOG_EXPORTED) == []


def test_it_signs_out_an_admin_whose_session_skipped_the_second_factor(world):
    # A session that never passed the code step (made here by force_login): the 2FA
    # middleware ends it and sends the admin to sign in again.
    for url in console_urls(world):
        client = member_client(world.admin)
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"] == "/accounts/login/", url
        assert client.get("/account/").status_code == 302  # signed out
    assert events(Action.AUDIT_LOG_VIEWED) == []
    assert events(Action.AUDIT_LOG_EXPORTED) == []


def test_it_sends_an_admin_without_a_second_factor_to_set_one_up(world):
    newcomer = make_person("new-keeper", staff=True)
    client = member_client(newcomer)
    for url in console_urls(world):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"] == "/account/two-factor/set-up/", url
    assert events(Action.AUDIT_LOG_VIEWED) == []


def test_an_admin_between_password_and_code_is_not_let_in(world, client):
    totp_device(world.admin)
    response = client.post(
        "/accounts/login/",
        {"login": world.admin.username, "password": "lantern harbour quietly 42"},
    )
    assert response["Location"] == "/accounts/login/two-factor/"
    for url in console_urls(world):
        # Not signed in yet: sent to sign in, like every private page.
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/login/"), url
    assert events(Action.AUDIT_LOG_VIEWED) == []


def test_a_verified_admin_is_let_in(world, admin_client):
    for url in console_urls(world):
        assert admin_client.get(url).status_code == 200, url


# --- the stream -------------------------------------------------------------------------------


def test_it_lists_events_newest_first_in_plain_language(world, admin_client, looks):
    first, beacon, second, revealed = looks
    everything = list(Event.objects.order_by("-seq").values_list("seq", flat=True))

    response = admin_client.get("/audit/")

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    assert shown_seqs(response) == everything[:PAGE_SIZE]
    lines = dict(zip(shown_seqs(response), shown_lines(response), strict=True))
    app_id = world.heron_application.pk
    assert lines[revealed.seq] == (
        "fac-lantern revealed the emergency contact details of river-handle in Evening Grief Circle"
    )
    assert lines[second.seq] == (
        f"fac-lantern opened the intake answers of application {app_id} in Evening Grief Circle"
    )
    assert lines[beacon.seq] == (
        f"fac-beacon opened the intake answers of application {world.wren_application.pk} "
        "in Morning Recovery Circle"
    )
    page = text_of(response)
    assert (
        f"fac-lantern opened the intake answers of application {app_id} in Evening Grief Circle"
        in page
    )
    # The IP is shown to admins, decrypted.
    assert LANTERN_IP in page
    # The row's contents, never what was read: no answers, no contact details, no reason.
    assert "My answer to question" not in page
    assert "07700 900456" not in page
    assert REVEAL_REASON not in page


@pytest.mark.parametrize("action", list(Action))
def test_it_has_a_plain_sentence_for_every_action(action):
    event = Event(
        seq=1,
        created_at=timezone.now(),
        actor_id=1,
        subject_id=2,
        action=int(action),
        target_type="screening.application",
        target_id="41",
        group_id=3,
    )
    text = describe_for_admin(event, handles={1: "fac-x", 2: "river"}, groups={3: "Circle"})
    assert text
    assert "{" not in text and "}" not in text
    assert "_" not in text  # never the bare enum name


# Words that only read properly spelled this way (an acronym, a hyphenated word).
MISSPELT_IN_LABELS = ["e2ee", "two factor", "device"]


@pytest.mark.parametrize("action", list(Action))
def test_every_action_label_reads_as_words(action):
    """A label made from the enum name once read "E2ee device registered"."""
    assert not [word for word in MISSPELT_IN_LABELS if word in action.label.lower()]
    assert action.label[0].isupper() and "_" not in action.label


def test_the_action_filter_shows_the_plain_labels(world, admin_client):
    assert Action.E2EE_DEVICE_REGISTERED.label == (
        "End-to-end encryption key registered for a browser"
    )
    assert Action.TWO_FACTOR_ENABLED.label == "Two-factor authentication turned on"
    page = admin_client.get("/audit/").content.decode()
    assert ">End-to-end encryption key registered for a browser</option>" in page
    assert "E2ee" not in page


def test_it_filters_by_action(world, admin_client, looks):
    first, beacon, second, _ = looks
    response = get(admin_client, "/audit/", action=str(int(Action.APPLICATION_ANSWERS_VIEWED)))
    assert shown_seqs(response) == [second.seq, beacon.seq, first.seq]


def test_it_filters_by_actor(world, admin_client, looks):
    first, beacon, second, revealed = looks
    lantern = world.lantern.user.pk
    response = get(admin_client, "/audit/", actor="FAC-Lantern")  # handles match any case
    seqs = shown_seqs(response)
    assert seqs == list(
        Event.objects.filter(actor_id=lantern).order_by("-seq").values_list("seq", flat=True)
    )
    assert seqs[:3] == [revealed.seq, second.seq, first.seq]
    assert beacon.seq not in seqs
    assert {e.actor_id for e, _ in response.context["rows"]} == {lantern}

    both = get(
        admin_client,
        "/audit/",
        actor="fac-lantern",
        action=str(int(Action.APPLICATION_ANSWERS_VIEWED)),
    )
    assert shown_seqs(both) == [second.seq, first.seq]


def test_it_filters_by_subject(world, admin_client, looks):
    *_, revealed = looks
    response = get(admin_client, "/audit/", subject="river-handle")
    assert revealed.seq in shown_seqs(response)
    assert {e.subject_id for e, _ in response.context["rows"]} == {world.river.user_id}


def test_it_filters_by_group(world, admin_client, looks):
    first, beacon, second, revealed = looks
    response = get(admin_client, "/audit/", group=str(world.other_group.pk))
    seqs = shown_seqs(response)
    assert beacon.seq in seqs
    assert not {first.seq, second.seq, revealed.seq} & set(seqs)
    assert {e.group_id for e, _ in response.context["rows"]} == {world.other_group.pk}

    sensitive = get(
        admin_client,
        "/audit/",
        group=str(world.group.pk),
        action=str(int(Action.APPLICATION_ANSWERS_VIEWED)),
    )
    assert shown_seqs(sensitive) == [second.seq, first.seq]


def test_it_filters_by_target(world, admin_client, looks):
    first, beacon, second, _ = looks
    response = get(
        admin_client,
        "/audit/",
        target_type="screening.application",
        target_id=str(world.heron_application.pk),
    )
    rows = response.context["rows"]
    assert [e.action_enum for e, _ in rows] == [
        Action.APPLICATION_ANSWERS_VIEWED,
        Action.APPLICATION_ANSWERS_VIEWED,
        Action.APPLICATION_SUBMITTED,
        Action.APPLICATION_STARTED,
    ]
    assert [e.seq for e, _ in rows][:2] == [second.seq, first.seq]
    assert beacon.seq not in shown_seqs(response)


def test_it_filters_by_ip(world, admin_client, looks):
    first, beacon, second, revealed = looks
    response = get(admin_client, "/audit/", ip=LANTERN_IP)
    assert shown_seqs(response) == [revealed.seq, second.seq, first.seq]
    assert shown_seqs(get(admin_client, "/audit/", ip=BEACON_IP)) == [beacon.seq]
    assert shown_seqs(get(admin_client, "/audit/", ip="192.0.2.99")) == []


def test_it_filters_by_date_range(world, admin_client):
    with clock_shifted(timedelta(days=-10)):
        ten_days_ago = make_events(2, action=Action.LOGIN_FAILED)
    with clock_shifted(timedelta(days=-3)):
        three_days_ago = make_events(3, action=Action.LOGIN_FAILED)
    today = make_events(1, action=Action.LOGIN_FAILED)
    failed = str(int(Action.LOGIN_FAILED))
    local = timezone.localdate()

    def seqs(**params):
        return shown_seqs(get(admin_client, "/audit/", action=failed, **params))

    day = (local - timedelta(days=3)).isoformat()
    assert seqs(since=day, until=day) == [e.seq for e in reversed(three_days_ago)]
    # "To" is inclusive of its whole day; "From" alone runs to now.
    assert seqs(since=(local - timedelta(days=4)).isoformat()) == [
        e.seq for e in reversed(three_days_ago + today)
    ]
    assert seqs(until=(local - timedelta(days=5)).isoformat()) == [
        e.seq for e in reversed(ten_days_ago)
    ]
    assert seqs(since=local.isoformat(), until=local.isoformat()) == [today[0].seq]


def test_it_pages_by_keyset_without_overlap_or_gap(world, admin_client):
    make_events(2 * PAGE_SIZE + 7)
    before_viewing = list(Event.objects.order_by("-seq").values_list("seq", flat=True))

    seen, pages, url = [], 0, "/audit/"
    while url:
        response = admin_client.get(url if url.startswith("/") else "/audit/" + url)
        assert response.status_code == 200
        seqs = shown_seqs(response)
        assert len(seqs) <= PAGE_SIZE
        seen += seqs
        pages += 1
        url = response.context["next_url"]
        if url:
            assert f'href="{url}"'.replace("&", "&amp;") in response.content.decode()
    assert pages == -(-len(before_viewing) // PAGE_SIZE) >= 3
    # The log grew while paging (each look is recorded), and pages still join exactly.
    assert seen == before_viewing
    assert len(seen) == len(set(seen))


def test_it_keeps_the_filters_when_paging(world, admin_client):
    failed = make_events(PAGE_SIZE + 3, action=Action.LOGIN_FAILED)
    make_events(5)  # other noise, interleaved after
    action = str(int(Action.LOGIN_FAILED))

    first = get(admin_client, "/audit/", action=action)
    next_url = first.context["next_url"]
    query = parse_qs(urlsplit(next_url).query)
    assert query == {"action": [action], "before": [str(failed[3].seq)]}
    second = admin_client.get("/audit/" + next_url)

    assert shown_seqs(first) == [e.seq for e in reversed(failed)][:PAGE_SIZE]
    assert shown_seqs(second) == [e.seq for e in failed[:3]][::-1]
    assert second.context["next_url"] is None


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"actor": "nobody-by-this-name"}, "actor", "No account has that login handle."),
        ({"subject": "nobody-by-this-name"}, "subject", "No account has that login handle."),
        ({"ip": "not-an-ip"}, "ip", "Enter a valid IPv4 or IPv6 address."),
        ({"since": "2024-13-45"}, "since", "Enter a valid date."),
        ({"until": "yesterday"}, "until", "Enter a valid date."),
        ({"group": "999999"}, "group", "Select a valid choice."),
        ({"group": "abc"}, "group", "Select a valid choice."),
        ({"action": "123456"}, "action", "Select a valid choice."),
    ],
)
def test_it_shows_the_form_again_for_bad_filters(
    world, admin_client, looks, params, field, message
):
    response = get(admin_client, "/audit/", **params)
    assert response.status_code == 200
    form = response.context["form"]
    assert field in form.errors
    assert message in form.errors[field][0]
    assert message in text_of(response)
    assert shown_seqs(response) == []  # nothing shown for a filter that didn't apply
    # Still recorded as a look, with no filter in use.
    viewed = events(Action.AUDIT_LOG_VIEWED)
    assert [e.extra for e in viewed] == [{"page": "events", "filters": []}]


def test_it_ignores_a_malformed_page_marker(world, admin_client, looks):
    response = get(admin_client, "/audit/", before="not-a-number")
    assert response.status_code == 200
    assert shown_seqs(response)[0] == looks[-1].seq


# --- looking is recorded ----------------------------------------------------------------------


def test_viewing_and_filtering_the_log_is_itself_recorded(world, admin_client, looks):
    before = last_event().seq
    get(admin_client, "/audit/")
    get(
        admin_client,
        "/audit/",
        actor="fac-lantern",
        action=str(int(Action.APPLICATION_ANSWERS_VIEWED)),
        ip=LANTERN_IP,
        since="2020-01-01",
    )

    viewed = events(Action.AUDIT_LOG_VIEWED, seq__gt=before)
    assert [(e.actor_id, e.extra) for e in viewed] == [
        (world.admin.pk, {"page": "events", "filters": []}),
        (
            world.admin.pk,
            {"page": "events", "filters": ["actions", "actor_id", "ip_index", "since"]},
        ),
    ]
    assert viewed[1].ip == "127.0.0.1"
    # Which filters, not their values.
    assert "fac-lantern" not in str(viewed[1].extra)
    assert LANTERN_IP not in str(viewed[1].extra)
    # And it shows in the console itself, in plain language.
    again = admin_client.get("/audit/")
    assert "site-keeper viewed the audit log" in shown_lines(again)


def test_every_console_page_records_the_look(world, admin_client, looks):
    before = last_event().seq
    get(admin_client, "/audit/people/", handle="river-handle")
    admin_client.get(f"/audit/groups/{world.group.pk}/")
    admin_client.get("/audit/signals/")
    viewed = events(Action.AUDIT_LOG_VIEWED, seq__gt=before)
    assert [e.extra for e in viewed] == [
        {"page": "person", "filters": ["person"]},
        {"page": "group_access", "filters": ["group", "sensitive_access"]},
        {"page": "signals", "filters": []},
    ]
    assert {e.actor_id for e in viewed} == {world.admin.pk}


# --- the chain's status -----------------------------------------------------------------------


def test_it_shows_the_chain_status(world, admin_client, looks):
    response = admin_client.get("/audit/")
    assert "The chain has not been verified yet" in text_of(response)

    call_command("verify_audit_log", stdout=StringIO(), stderr=StringIO())
    verified_up_to = Event.objects.order_by("-seq").values_list("seq", flat=True).first()
    assert verified_up_to == last_event().seq

    for url in ("/audit/", "/audit/signals/"):
        page = text_of(admin_client.get(url))
        assert f"Chain verified: {verified_up_to} rows, up to row {verified_up_to}, at " in page
        assert "not been verified" not in page


# --- access reviews ---------------------------------------------------------------------------


def test_the_person_review_shows_what_was_done_to_and_by_them(world, admin_client, looks):
    first, beacon, second, revealed = looks
    river = world.river.user

    response = get(admin_client, "/audit/people/", handle="River-Handle")

    assert response.status_code == 200
    assert response.context["person"] == river
    rows = response.context["rows"]
    assert all(river.pk in (e.actor_id, e.subject_id) for e, _ in rows)
    assert [e.seq for e, _ in rows] == sorted((e.seq for e, _ in rows), reverse=True)
    lines = shown_lines(response)
    assert lines[0] == (
        "fac-lantern revealed the emergency contact details of river-handle in Evening Grief Circle"
    )
    # What they did themselves, too.
    assert "river-handle signed the agreement of Evening Grief Circle" in lines
    assert "Everything done by or to river-handle" in text_of(response)
    assert not {first.seq, second.seq, beacon.seq} & {e.seq for e, _ in rows}

    by_lantern = get(admin_client, "/audit/people/", handle="fac-lantern")
    seqs = [e.seq for e, _ in by_lantern.context["rows"]]
    assert seqs[:3] == [revealed.seq, second.seq, first.seq]
    assert beacon.seq not in seqs


def test_the_person_review_refuses_an_unknown_handle(world, admin_client):
    response = get(admin_client, "/audit/people/", handle="nobody-by-this-name")
    assert response.status_code == 200
    assert response.context["person"] is None
    assert response.context["rows"] == []
    assert "No account has that login handle." in text_of(response)


def test_the_group_review_shows_who_accessed_sensitive_data(world, admin_client, looks):
    first, beacon, second, revealed = looks
    # An admin looked up the account behind a pseudonym in the Django admin (audited there).
    record_event(
        action=Action.MEMBERSHIP_IDENTITY_VIEWED,
        actor=world.admin,
        subject=world.river.user,
        target=world.river,
        group_id=world.group.pk,
    )
    looked_up = last_event()

    response = admin_client.get(f"/audit/groups/{world.group.pk}/")

    assert response.status_code == 200
    assert shown_seqs(response) == [looked_up.seq, revealed.seq, second.seq, first.seq]
    page = text_of(response)
    assert "Who accessed sensitive data in Evening Grief Circle" in page
    app_id = world.heron_application.pk
    assert (
        f"fac-lantern opened the intake answers of application {app_id} in Evening Grief Circle"
        in page
    )
    # The reason written for the reveal is there for the auditor...
    assert REVEAL_REASON in page
    # ...named by login handle, like every other row: no pseudonym beside a handle, which
    # would tell the admin who is behind it without the audited identity look-up.
    assert "site-keeper looked up the account behind a membership of Evening Grief Circle" in page
    assert "Lantern" not in page
    assert "River" not in page

    other = admin_client.get(f"/audit/groups/{world.other_group.pk}/")
    assert shown_seqs(other) == [beacon.seq]
    assert REVEAL_REASON not in text_of(other)


def test_the_console_never_names_a_membership_beside_its_account(world, admin_client):
    """A membership's events name its account: looked up by the membership's id, the
    console would tell the admin who is behind a pseudonym (the Membership admin lists
    pseudonyms by id) without the audited identity look-up (issue 18, finding 1)."""
    membership = str(world.river.pk)

    by_membership = get(
        admin_client, "/audit/", target_type="groups.membership", target_id=membership
    )
    assert by_membership.context["rows"] == []
    assert "A membership's events can't be looked up by its id here" in text_of(by_membership)
    untyped = get(admin_client, "/audit/", target_id=membership)
    assert untyped.context["rows"] == []
    assert "Say what kind of target the id is of." in text_of(untyped)

    # Wherever a membership's events are listed beside a handle, its id is left out.
    for response in (
        get(admin_client, "/audit/people/", handle="river-handle"),
        get(admin_client, "/audit/", subject="river-handle"),
        get(admin_client, "/audit/", target_type="groups.membership"),
    ):
        rows = response.context["rows"]
        assert any(e.target_type == "groups.membership" for e, _ in rows)
        page = text_of(response)
        assert "(groups.membership)" in page
        assert f"groups.membership {membership}" not in page
    assert not events(Action.MEMBERSHIP_IDENTITY_VIEWED)


def test_the_group_review_of_an_unknown_group_is_not_found(world, admin_client):
    assert admin_client.get("/audit/groups/999999/").status_code == 404


# --- the signals page -------------------------------------------------------------------------


def test_the_signals_page_shows_the_last_day(world, admin_client, looks):
    *_, revealed = looks
    record_event(action=Action.LOGIN_FAILED, subject=world.river.user, ip="192.0.2.50")
    record_event(action=Action.RATE_LIMIT_HIT, ip="192.0.2.50", extra={"path": "/accounts/login/"})

    response = admin_client.get("/audit/signals/")

    assert response.status_code == 200
    page = text_of(response)
    assert "Failed sign-ins: 1" in page
    assert "192.0.2.50 — 1" in page
    assert "river-handle — 1" in page
    assert "Rate limits hit: 1" in page
    assert [e.seq for e, _ in response.context["reveals"]] == [revealed.seq]
    assert (
        "fac-lantern revealed the emergency contact details of river-handle "
        "in Evening Grief Circle" in page
    )
    appointed = [text for _, text in response.context["appointments"]]
    assert appointed == [
        "site-keeper appointed fac-beacon facilitator of Morning Recovery Circle",
        "site-keeper appointed fac-lantern facilitator of Evening Grief Circle",
    ]
