"""The embedded default (`make run`: SQLite, in-memory channel layer) runs the app's own
hand-written SQL too. The suite runs on PostgreSQL, so this starts a fresh process on a
throwaway SQLite file, migrates (checking the board's database rule is in place), seeds the
demo and drives the room's statements."""

import textwrap

from tests.supportgroups.test_settings import run

SCRIPT = textwrap.dedent(
    """
    import sys
    import django
    import supportgroups.settings as configured

    configured.DATABASES["default"]["NAME"] = sys.argv[1]
    django.setup()

    from django.core.management import call_command
    from meetings import services
    from meetings.models import Meeting

    call_command("migrate", verbosity=0)
    # board/migrations/0003's rule on groups_membership: SQLite drops a table's triggers
    # when a migration rebuilds the table, so a later migration could lose it silently.
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tbl_name FROM sqlite_master WHERE type = 'trigger'"
            " AND name = 'board_forget_reads_of_ended_place'"
        )
        print("TRIGGER", cursor.fetchall())
    call_command("seed_demo", verbosity=0)
    meeting = Meeting.objects.filter(group__e2ee_meetings=True).first()
    first = services.meeting_fix_e2ee(meeting=Meeting.objects.get(pk=meeting.pk))
    again = services.meeting_fix_e2ee(meeting=Meeting.objects.get(pk=meeting.pk))
    print("E2EE", first, again, Meeting.objects.get(pk=meeting.pk).e2ee)

    # The send path's hand-written statements, in a plain meeting that is open now.
    from django.utils import timezone
    from groups.models import Membership

    open_now = [m for m in Meeting.objects.all() if m.is_open(timezone.now())][0]
    Meeting.objects.filter(pk=open_now.pk).update(e2ee=False)
    member = Membership.objects.get(group=open_now.group, user__username="demo-member")
    posted = services.message_post(
        meeting_id=open_now.pk, membership_id=member.pk, client_id="sqlite-0001", body="Hello"
    )
    print("POSTED", posted.message.seq > 0)

    # The sealed send's checks (meetings/e2ee.py): one statement, prepared on PostgreSQL
    # only (supportgroups/prepared.py), here run as it is, with its named values.
    from meetings import e2ee

    sealed = e2ee.SealedMessage(
        sender_device="A" * 22, epoch=1, index=0, iv=bytes(12), ciphertext=bytes(16),
        signature=bytes(64), commitment=bytes(32),
    )
    found = e2ee._seal_check(
        sealed, meeting_id=meeting.pk, membership_id=member.pk, session_key="no-such-session"
    )
    print("SEALED", found.device_id, sorted(found.stale), sorted(found.missing))

    # The facilitator's dashboard: its lists are compiled once on PostgreSQL only
    # (supportgroups/compiled_query.py); here they are the plain querysets, typed.
    from moderation import selectors as moderation_selectors

    counts, newest = moderation_selectors.needs_you_now(open_now.group)
    soon = moderation_selectors.next_meetings(open_now.group, now=timezone.now())
    oldest = counts.oldest_application_at
    print("DASHBOARD", isinstance(counts.waiting_applications, int), bool(soon),
          oldest is None or timezone.is_aware(oldest))
    """
)


def test_a_demo_meeting_takes_its_e2ee_setting_and_a_message_on_sqlite(tmp_path):
    result = run(["-c", SCRIPT, str(tmp_path / "db.sqlite3")], DEBUG="true")
    assert result.returncode == 0, result.output
    assert "E2EE True True True" in result.stdout, result.output
    assert "POSTED True" in result.stdout, result.output
    assert "SEALED None [] []" in result.stdout, result.output
    assert "TRIGGER [('groups_membership',)]" in result.stdout, result.output
    assert "DASHBOARD True True True" in result.stdout, result.output
