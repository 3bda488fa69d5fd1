"""The embedded default (`make run`: SQLite, in-memory channel layer) runs the app's own
hand-written SQL too. The suite runs on PostgreSQL, so this starts a fresh process on a
throwaway SQLite file, migrates, seeds the demo and drives the room's statements."""

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
    call_command("seed_demo", verbosity=0)
    meeting = Meeting.objects.filter(group__e2ee_meetings=True).first()
    first = services.meeting_fix_e2ee(meeting=Meeting.objects.get(pk=meeting.pk))
    again = services.meeting_fix_e2ee(meeting=Meeting.objects.get(pk=meeting.pk))
    print("E2EE", first, again, Meeting.objects.get(pk=meeting.pk).e2ee)
    """
)


def test_a_demo_meeting_takes_its_groups_e2ee_setting_on_sqlite(tmp_path):
    result = run(["-c", SCRIPT, str(tmp_path / "db.sqlite3")], DEBUG="true")
    assert result.returncode == 0, result.output
    assert "E2EE True True True" in result.stdout, result.output
