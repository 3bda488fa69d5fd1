"""What our templates print: never their own source, "(optional)" once, and no text box
that cuts off what is pasted into it.

A `{#` comment running onto a second line is not a comment to Django; one was printed at
the top of every page (an internal note about benchmarks, shown to every member).
"""

import importlib
import inspect
import re
from pathlib import Path

import pytest
from django import forms
from django.apps import apps
from django.conf import settings

TEMPLATE_DIRS = [Path(settings.BASE_DIR) / "templates"] + [
    path
    for path in Path(settings.BASE_DIR).glob("*/templates")
    if path.parent.name not in {".venv", "node_modules"}
]
TEMPLATE_SOURCE = re.compile(r"\{[#%{]|[#%}]\}")


def our_templates() -> list[Path]:
    found = sorted(p for folder in TEMPLATE_DIRS for p in folder.rglob("*.html"))
    assert found, "no templates found: the folders above moved"
    return found


def test_it_closes_every_short_comment_on_the_line_it_opens():
    unclosed = []
    for path in our_templates():
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            # Each "{#" must have its "#}" later on the same line.
            for opening in re.finditer(r"\{#", line):
                if "#}" not in line[opening.end() :]:
                    unclosed.append(f"{path.relative_to(settings.BASE_DIR)}:{number}")
    assert unclosed == [], "use {% comment %} for comments over several lines"


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/", "/groups/", "/accounts/login/", "/accounts/signup/"])
def test_pages_show_no_template_source(client, path):
    response = client.get(path)
    assert response.status_code == 200
    html = response.content.decode()
    # Inline scripts and styles are not ours to judge here; the page text is.
    text = re.sub(r"<(script|style)\b.*?</\1>", "", html, flags=re.DOTALL)
    assert TEMPLATE_SOURCE.findall(text) == []


# Every app of ours with forms, found rather than listed, so a new app is not missed.
FORM_MODULES = sorted(
    app.name
    for app in apps.get_app_configs()
    if Path(app.path).parent == settings.BASE_DIR and (Path(app.path) / "forms.py").exists()
)


def our_form_fields():
    """(where, field) for every field of every form class in our apps."""
    for app in FORM_MODULES:
        module = importlib.import_module(f"{app}.forms")
        for name, form in inspect.getmembers(module, inspect.isclass):
            if issubclass(form, forms.BaseForm) and form.__module__ == module.__name__:
                for field_name, field in form.base_fields.items():
                    yield f"{app}.forms.{name}.{field_name}", field


def test_form_labels_leave_optional_to_the_form_template():
    # includes/form_fields.html adds "(optional)" to every field that is not required.
    doubled = [
        where for where, field in our_form_fields() if "optional" in str(field.label or "").lower()
    ]
    assert doubled == []


def test_no_text_box_has_a_maxlength_that_would_cut_off_a_paste():
    # The browser truncates pasted text at maxlength without a word; the forms check the
    # length themselves and say so, keeping the text (supportgroups.widgets.Textarea).
    boxes = {
        where: field.widget.render("box", "")
        for where, field in our_form_fields()
        if isinstance(field.widget, forms.Textarea)
    }
    assert len(boxes) >= 10, "the forms' text boxes were not found"
    assert [where for where, html in boxes.items() if "maxlength" in html] == []
    limited = [where for where, field in our_form_fields() if getattr(field, "max_length", None)]
    assert any(where in boxes for where in limited)  # limits are still checked by the form
