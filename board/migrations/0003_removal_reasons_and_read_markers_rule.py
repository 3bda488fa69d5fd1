"""Why a post's text or a thread's title is gone (stored, not guessed), and the rule that a
member's read markers go when their place in the group ends.

The read markers are the board's data about a place; a place ends (left, removed) in the
groups and moderation services, below and beside the board. The database does it, as an
on-delete rule would: when a membership's status becomes ``left`` or ``removed``, its
``board_threadread`` rows are deleted in the same statement's transaction, whichever
service (or admin page) changed it. Account deletion deletes the memberships, and the
foreign key's cascade takes the markers.
"""

from django.db import migrations, models

ENDED = ("left", "removed")

REMOVAL_CHOICES = [
    ("author", "[deleted by its author]"),
    ("retention", "[removed under the group's retention period]"),
    ("account_deleted", "[removed: the author's account was deleted]"),
]

POSTGRESQL_CREATE = """
CREATE OR REPLACE FUNCTION board_forget_reads_of_ended_place() RETURNS trigger AS $$
BEGIN
    DELETE FROM board_threadread WHERE membership_id = NEW.id;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER board_forget_reads_of_ended_place
    AFTER UPDATE OF status ON groups_membership
    FOR EACH ROW
    WHEN (NEW.status IN ('left', 'removed') AND OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION board_forget_reads_of_ended_place();
"""

POSTGRESQL_DROP = """
DROP TRIGGER IF EXISTS board_forget_reads_of_ended_place ON groups_membership;
DROP FUNCTION IF EXISTS board_forget_reads_of_ended_place();
"""

SQLITE_CREATE = """
CREATE TRIGGER board_forget_reads_of_ended_place
    AFTER UPDATE OF status ON groups_membership
    FOR EACH ROW
    WHEN NEW.status IN ('left', 'removed') AND OLD.status IS NOT NEW.status
BEGIN
    DELETE FROM board_threadread WHERE membership_id = NEW.id;
END;
"""

SQLITE_DROP = "DROP TRIGGER IF EXISTS board_forget_reads_of_ended_place;"


def rule_create(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRESQL_CREATE, params=None)
    elif vendor == "sqlite":
        schema_editor.execute(SQLITE_CREATE, params=None)
    # Markers of places that had already ended go now.
    ThreadRead = apps.get_model("board", "ThreadRead")
    ThreadRead.objects.filter(membership__status__in=ENDED).delete()


def rule_drop(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRESQL_DROP, params=None)
    elif vendor == "sqlite":
        schema_editor.execute(SQLITE_DROP, params=None)


def reasons_fill(apps, schema_editor):
    """Before this, only an author's deletion set ``deleted_at``; a post without text and
    without it lost its text with its author's account; a title gone while its first
    post remains went with that post, and one whose first post is gone, with retention."""
    Post = apps.get_model("board", "Post")
    Thread = apps.get_model("board", "Thread")
    Post.objects.filter(body__isnull=True, deleted_at__isnull=False).update(removed="author")
    Post.objects.filter(body__isnull=True, deleted_at__isnull=True).update(
        removed="account_deleted"
    )
    for thread_id in Thread.objects.filter(title__isnull=True).values_list("pk", flat=True):
        first = Post.objects.filter(thread_id=thread_id, number=1).first()
        Thread.objects.filter(pk=thread_id).update(
            title_removed=first.removed if first is not None else "retention"
        )


class Migration(migrations.Migration):
    dependencies = [
        ("board", "0002_boardlive_read_markers"),
        ("groups", "0005_e2ee_meetings"),
    ]

    operations = [
        migrations.AddField(
            model_name="post",
            name="removed",
            field=models.CharField(blank=True, choices=REMOVAL_CHOICES, max_length=16),
        ),
        migrations.AddField(
            model_name="thread",
            name="title_removed",
            field=models.CharField(blank=True, choices=REMOVAL_CHOICES, max_length=16),
        ),
        migrations.RunPython(reasons_fill, migrations.RunPython.noop),
        migrations.RunPython(rule_create, rule_drop, elidable=False),
    ]
