"""Every state change goes through a service (<app>/services.py), which audits it and tells
sockets after commit. This reads the app's code for ORM writes anywhere else: views,
consumers, admin, middleware, commands, forms and helpers call services instead.

A line may be allowed below only with the reason it is not a write of ours to route."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
APPS = [
    "accounts",
    "audit",
    "board",
    "console",
    "groups",
    "meetings",
    "moderation",
    "privacy",
    "screening",
    "supportgroups",
]

ORM_WRITE = re.compile(
    r"\.(save|create|update|delete|bulk_create|bulk_update|get_or_create|update_or_create)\("
)

# (path, text of the line) -> why it may stay where it is.
ALLOWED = {
    (
        "accounts/models.py",
        "self.save(",
    ): "django-otp's device API: verify_token() (called by the accounts services, inside "
    "their transaction) keeps the device's own throttling counters",
    (
        "accounts/models.py",
        ").update(used_at=timezone.now())",
    ): "django-otp's device API: a backup code is spent inside verify_token(), called by "
    "the accounts services",
    (
        "accounts/middleware.py",
        "storage.update(response)",
    ): "not the ORM: Django's message storage writing its cookie",
    (
        "supportgroups/progress.py",
        "self.update(self.count + by)",
    ): "not the ORM: a progress bar",
    (
        "console/incident_views.py",
        "initial.update(",
    ): "not the ORM: the incident form's prefilled values (a dictionary)",
    (
        "supportgroups/settings.py",
        'DATABASES["default"].setdefault("OPTIONS", {}).update(',
    ): "not the ORM: a settings dictionary",
}


def app_files():
    for app in APPS:
        for path in sorted((REPO / app).rglob("*.py")):
            relative = path.relative_to(REPO).as_posix()
            if "/migrations/" in relative or path.name == "services.py":
                continue
            yield relative, path


def writes_outside_services():
    found = []
    for relative, path in app_files():
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            code = line.split("#", 1)[0]
            if not ORM_WRITE.search(code):
                continue
            if any(relative == allowed_path and text in code for allowed_path, text in ALLOWED):
                continue
            found.append(f"{relative}:{number}: {line.strip()}")
    return found


def test_no_orm_write_outside_the_services():
    assert writes_outside_services() == [], (
        "Move these writes into a service (audited, broadcast on commit), or allow the line "
        "in ALLOWED with the reason"
    )


def test_every_allowed_line_is_still_there():
    """An allowance outlives its line only by mistake: it would let a new write through."""
    sources = {relative: path.read_text() for relative, path in app_files()}
    stale = [key for key in ALLOWED if key[1] not in sources.get(key[0], "")]
    assert stale == []


def test_it_would_catch_a_write_in_a_view(tmp_path, monkeypatch):
    """The check itself: a view saving a model directly is found."""
    app = tmp_path / "groups"
    app.mkdir()
    (app / "views.py").write_text("def edit(request, group):\n    group.save()\n")
    (app / "services.py").write_text("def group_update(group):\n    group.save()\n")
    monkeypatch.setitem(globals(), "REPO", tmp_path)
    monkeypatch.setitem(globals(), "APPS", ["groups"])
    assert writes_outside_services() == ["groups/views.py:2: group.save()"]
