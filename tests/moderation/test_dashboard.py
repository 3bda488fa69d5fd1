"""The facilitator dashboard: the combined view of every group a person facilitates and
one page per group (what needs attention now, what is coming up, the members, the
moderation log), correct counts, and a fixed number of SQL queries however big the group.
"""

from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import Min, Window
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import User
from groups import services as group_services
from groups.models import AgreementVersion, Membership, Role, Signature, Status
from groups.pseudonyms import pseudonym_key
from meetings import services as meeting_services
from meetings.models import Attendance, Meeting, Message
from moderation import services
from moderation.models import ActionKind, ModerationAction, Report, SafetyFlag
from screening import services as screening_services
from screening.models import Application, ApplicationStatus
from tests.html import without_random_tokens
from tests.moderation.conftest import (
    RULES,
    appoint,
    give_place,
    make_group,
    make_person,
    schedule,
    submitted_application,
    text_of,
)


def group_url(world):
    return f"/moderation/{world.slug}/"


# --- the combined view ------------------------------------------------------------------------


def test_the_combined_view_lists_each_facilitated_group_with_its_counts(world, fac):
    second = make_group(world.admin, "Carers Evening", requires_screening=True)
    appoint(second, world.facilitator.user, "Lantern", actor=world.admin)
    submitted_application(second, make_person("applicant-one"))
    services.report_file(actor=world.river.user, message=world.fern_message, guideline_number=2)
    services.safety_flag_raise(actor=world.fern.user, group=world.fern.group, about=world.river)
    give_place(world.group, make_person("newcomer"))  # has not signed yet

    response = fac.get("/moderation/")
    assert response.status_code == 200
    text = text_of(response)
    evening = text.split("Evening Grief Circle", 1)[1]
    carers = text.split("Carers Evening", 1)[1].split("Evening Grief Circle")[0]
    assert "1 safety concern 1 open report 0 applications waiting 1 member to sign" in evening
    # (Sent a moment ago: "just now", never "0 minutes".)
    assert "0 safety concerns 0 open reports 1 application waiting (the oldest sent just now)" in (
        carers
    )
    # Groups Lantern doesn't facilitate are not there.
    assert "Morning Recovery Circle" not in text
    content = response.content.decode()
    assert f'href="/moderation/{world.slug}/"' in content
    assert f'href="/moderation/{second.slug}/"' in content


# --- one group's page -------------------------------------------------------------------------


def test_the_group_page_shows_what_needs_you_now_then_the_next_meetings(world, fac):
    world.group.requires_screening = True
    world.group.save(update_fields=["requires_screening"])
    application = submitted_application(world.group, make_person("applicant-one"))
    Application.objects.filter(pk=application.pk).update(
        submitted_at=timezone.now() - timedelta(days=3)
    )
    services.report_file(actor=world.river.user, message=world.fern_message, guideline_number=2)
    services.safety_flag_raise(
        actor=world.fern.user, group=world.fern.group, about=world.river, note="Worried."
    )
    newcomer = give_place(world.group, make_person("newcomer"))  # no name, not signed
    later = schedule(world.group, world.facilitator.user, starts_in=timedelta(days=7))
    services.action_take(
        membership=world.fern, actor=world.facilitator.user, kind="warn", guideline_number=2
    )

    response = fac.get(group_url(world))
    assert response.status_code == 200
    text = text_of(response)
    positions = [text.index(heading) for heading in ("Needs you now", "Coming up")]
    assert positions == sorted(positions)
    assert "Safety concerns (1)" in text and "About River, raised by Fern" in text
    assert "Open reports (1)" in text and "Message by Fern, rule 2, reported by River" in text
    assert "Applications waiting (1)" in text
    assert "1 application, the oldest sent 3 days ago" in text
    assert "To sign the current agreement (1)" in text
    assert "1 member still to sign the current agreement: (no name yet)" in text
    assert "Tuesday meeting" in text and "(open now — join)" in text
    content = response.content.decode()
    assert f"/meetings/{world.meeting.pk}/" in content
    assert f'action="/meetings/{world.meeting.pk}/close/"' in content  # open now: Close
    assert f'action="/meetings/{later.pk}/open/"' in content  # later: Open early
    assert later.starts_at.strftime("%-d %b") in text
    assert f'href="/screening/review/{world.slug}/{application.pk}/"' in content
    assert f"members/{newcomer.pk}/" in content
    # The member list and the log are pages of their own, linked from here.
    assert "Last attended" not in text and "Lantern: Warning" not in text
    assert f'href="/moderation/{world.slug}/members/"' in content
    assert f'href="/moderation/{world.slug}/log/"' in content


def test_each_list_shows_its_newest_few_under_the_full_count(world, fac):
    messages = [world.fern_message]
    for i in range(7):  # (two authors: one alone would meet the rate limit)
        messages.append(
            meeting_services.message_post(
                meeting_id=world.meeting.pk,
                membership_id=(world.fern, world.harbour)[i % 2].pk,
                client_id=f"few-{i}",
                body=f"Message {i}",
            ).message
        )
    reports = [
        services.report_file(actor=world.river.user, message=m, guideline_number=2)
        for m in messages
    ]
    content = fac.get(group_url(world)).content.decode()
    assert "Open reports (8)" in text_of(fac.get(group_url(world)))
    shown = [r.pk for r in reports if f'reports/{r.pk}/"' in content]
    assert shown == [r.pk for r in reports[-5:]]  # the newest five
    assert "The newest 5 are shown" in text_of(fac.get(group_url(world)))


def test_members_to_sign_a_new_agreement_are_listed(world, fac):
    group_services.agreement_publish(
        group=world.group, actor=world.facilitator.user, text="Version two of the agreement."
    )
    group_services.agreement_sign(
        actor=world.river.user,
        group=world.river.group,
        typed_name="River",
        guidelines_acknowledged=True,
    )
    # Facilitators sign too, before they see the group's dashboard again.
    assert fac.get(group_url(world))["Location"] == f"/groups/{world.group.slug}/agreement/sign/"
    group_services.agreement_sign(
        actor=world.facilitator.user,
        group=world.facilitator.group,
        typed_name="Lantern",
        guidelines_acknowledged=True,
    )
    text = text_of(fac.get(group_url(world)))
    assert "To sign the current agreement (2)" in text
    names = text.split("2 members still to sign the current agreement: ", 1)[1].split(".")[0]
    assert sorted(names.split(", ")) == ["Fern", "Harbour"]
    assert "2 members to sign the agreement" in text_of(fac.get("/moderation/"))


def test_resolved_reports_and_handled_flags_leave_the_attention_list(world, fac):
    report = services.report_file(
        actor=world.river.user, message=world.fern_message, guideline_number=2
    )
    flag = services.safety_flag_raise(
        actor=world.fern.user, group=world.fern.group, about=world.river
    )
    services.report_resolve(report=report, actor=world.facilitator.user, action="none")
    services.safety_flag_handle(flag=flag, actor=world.facilitator.user)
    text = text_of(fac.get(group_url(world)))
    assert "Open reports (0)" in text
    assert "Safety concerns" not in text
    assert "0 safety concerns 0 open reports" in text_of(fac.get("/moderation/"))


# --- a fixed number of queries ----------------------------------------------------------------


def grow(world, count: int) -> None:
    """Add ``count`` members, each with a signed agreement (or not), a message in the room,
    a report about it, a warning, an attendance, a safety concern and an application.

    Scale data is bulk-inserted: through the services, hundreds of members would take a
    minute to build. The first ten of each kind are made through the services (see
    ``seed``), so the rows have the shape the app gives them.
    """
    start = Membership.objects.filter(group=world.group).count()
    stamp = timezone.now()
    users = User.objects.bulk_create(
        User(username=f"bulk-member-{start + i:04d}") for i in range(count)
    )
    memberships = Membership.objects.bulk_create(
        Membership(
            group=world.group,
            user=user,
            role=Role.MEMBER,
            status=Status.ACTIVE,
            pseudonym=f"Guest {start + i:04d}",
            pseudonym_key=pseudonym_key(f"Guest {start + i:04d}"),
        )
        for i, user in enumerate(users)
    )
    agreement = AgreementVersion.objects.filter(group=world.group).order_by("-version").first()
    Signature.objects.bulk_create(
        Signature(
            membership=m, agreement=agreement, typed_name=m.pseudonym, guidelines_acknowledged=True
        )
        for i, m in enumerate(memberships)
        if i % 3  # every third one has not signed
    )
    # (What agreement_sign keeps alongside each signature.)
    Membership.objects.filter(pk__in=[m.pk for i, m in enumerate(memberships) if i % 3]).update(
        signed_agreement=agreement
    )
    meeting = Meeting.objects.get(pk=world.meeting.pk)
    messages = Message.objects.bulk_create(
        Message(
            meeting=meeting,
            seq=meeting.last_seq + 1 + i,
            client_id=f"bulk-msg-{start + i:06d}",
            author=m,
            body=f"Message {i}",
        )
        for i, m in enumerate(memberships)
    )
    Meeting.objects.filter(pk=meeting.pk).update(last_seq=meeting.last_seq + count)
    Report.objects.bulk_create(
        Report(
            group=world.group,
            meeting=meeting,
            message=message,
            message_seq=message.seq,
            message_body=message.body,
            reported=message.author,
            reporter=world.river,
            guideline_number=2,
            guideline_text=RULES[1],
        )
        for message in messages
    )
    ModerationAction.objects.bulk_create(
        ModerationAction(
            group=world.group,
            membership=m,
            kind=ActionKind.WARN,
            guideline_number=1,
            guideline_text=RULES[0],
            actor=world.facilitator,
        )
        for m in memberships
    )
    Attendance.objects.bulk_create(
        Attendance(meeting=meeting, membership=m, last_seen_at=stamp) for m in memberships
    )
    SafetyFlag.objects.bulk_create(
        SafetyFlag(group=world.group, raised_by=m, about=m) for m in memberships
    )
    questionnaire = screening_services.questionnaire_ensure(group=world.group)
    applicants = User.objects.bulk_create(
        User(username=f"bulk-applicant-{start + i:04d}") for i in range(count)
    )
    Application.objects.bulk_create(
        Application(
            group=world.group,
            applicant=applicant,
            questionnaire=questionnaire,
            answers={},
            status=ApplicationStatus.SUBMITTED,
            submitted_at=stamp,
        )
        for applicant in applicants
    )


def seed(world, count: int) -> None:
    """``count`` of everything, made through the services."""
    for i in range(count):
        member = give_place(world.group, make_person(f"seed-member-{i:02d}"), f"Seed {i:02d}")
        message = meeting_services.message_post(
            meeting_id=world.meeting.pk,
            membership_id=member.pk,
            client_id=f"seed-msg-{i:06d}",
            body=f"Seeded message {i}",
        ).message
        services.report_file(actor=world.river.user, message=message, guideline_number=2)
        services.action_take(
            membership=member, actor=world.facilitator.user, kind="warn", guideline_number=1
        )
        services.safety_flag_raise(actor=member.user, group=member.group, about=None)
        meeting_services.presence_join(
            meeting=world.meeting, membership=member, channel_name=f"seed.{i}"
        )
        submitted_application(world.group, make_person(f"seed-applicant-{i:02d}"))


def count_queries(client, url) -> tuple[int, str]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries), text_of(response)


@pytest.fixture
def busy_world(world):
    world.group.requires_screening = True
    world.group.save(update_fields=["requires_screening"])
    seed(world, 10)
    return world


@pytest.mark.parametrize("path", ["group", "combined", "members", "log"])
def test_the_dashboard_makes_the_same_number_of_queries_for_10_and_300(busy_world, fac, path):
    world = busy_world
    url = {
        "group": group_url(world),
        "combined": "/moderation/",
        "members": f"{group_url(world)}members/",
        "log": f"{group_url(world)}log/",
    }[path]
    fac.get(url)  # warm: the session's "last seen" and the like

    small, small_text = count_queries(fac, url)
    grow(world, 290)
    large, large_text = count_queries(fac, url)

    assert large == small, f"{small} queries with 10 rows, {large} with 300"
    assert small <= 20, small
    # ...and the counts are still right.
    if path == "group":
        assert "Open reports (10)" in small_text and "Open reports (300)" in large_text
        assert "Safety concerns (10)" in small_text and "Safety concerns (300)" in large_text
        assert "10 applications" in small_text and "300 applications" in large_text
        assert "97 members still to sign" in large_text  # every third bulk member
    elif path == "combined":
        assert "10 safety concerns 10 open reports 10 applications waiting" in small_text
        assert "300 safety concerns 300 open reports 300 applications waiting" in large_text
        assert "0 members to sign" in small_text and "97 members to sign" in large_text
    elif path == "members":
        assert "Seed 09" in small_text and "Next" not in small_text
        assert "Next 50 members" in large_text
    else:
        assert small_text.count("Warning —") == 10 and "Older steps" not in small_text
        assert large_text.count("Warning —") == 50 and "Older steps" in large_text


def test_the_page_compiled_once_renders_as_the_querysets_did(busy_world, fac):
    """The lists come from SQL compiled once per process (supportgroups/compiled_query.py);
    the page they draw is the one the ORM querysets drew, byte for byte."""
    from django.template.loader import render_to_string

    from moderation import selectors

    world = busy_world
    schedule(world.group, world.facilitator.user, starts_in=timedelta(days=7))
    response = fac.get(group_url(world))
    assert response.status_code == 200
    request = response.wsgi_request
    group = world.group
    now = timezone.now()

    def context(counts, newest, meetings):
        return {
            "group": group,
            "FACILITATES": True,
            "here": group_url(world),
            "counts": counts,
            **newest,
            "meetings": meetings,
            "now": now,
        }

    counts, newest = selectors.needs_you_now(group)
    compiled = context(counts, newest, selectors.next_meetings(group, now=now))
    flags = list(selectors._with_total(selectors.newest_flags(group, limit=None))[:5])
    reports = list(selectors._with_total(selectors.newest_reports(group, limit=None))[:5])
    applications = list(
        selectors._with_total(selectors.newest_applications(group, limit=None)).annotate(
            oldest=Window(Min("submitted_at"))
        )[:5]
    )
    unsigned = list(selectors._with_total(selectors.newest_unsigned(group, limit=None))[:5])
    by_querysets = context(
        counts,
        {"flags": flags, "reports": reports, "applications": applications, "unsigned": unsigned},
        list(selectors.upcoming(group, now=now)),
    )
    assert [len(v) for v in (flags, reports, applications)] == [5, 5, 5]
    assert len(by_querysets["meetings"]) == 2
    html = render_to_string("moderation/group.html", compiled, request=request)
    old_html = render_to_string("moderation/group.html", by_querysets, request=request)
    # (each CSRF field is masked afresh; everything else must be the same)
    assert without_random_tokens(html) == without_random_tokens(old_html)
    assert "Close now" in html and "Open early" in html and "Seed 09" in html
    assert (counts.open_flags, counts.open_reports, counts.waiting_applications) == (
        flags[0].total,
        reports[0].total,
        applications[0].total,
    )
    assert counts.oldest_application_at == applications[0].oldest
