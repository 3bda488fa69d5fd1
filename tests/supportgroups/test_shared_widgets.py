"""supportgroups/widgets.py SharedWidgetForm: a widget drawn once per process is the
widget Django draws, and only what nobody can make up new values of is kept."""

from django import forms

from moderation.forms import LogFilterForm, MemberFilterForm
from supportgroups import widgets


class _Drawn(forms.Form):
    status = forms.ChoiceField(required=False, choices=[("", "Everyone"), ("active", "Active")])
    name = forms.CharField(required=False, max_length=5)


def _as_django_draws(form: forms.Form, name: str) -> str:
    return str(forms.BoundField(form, form.fields[name], name))


class SharedDrawn(widgets.SharedWidgetForm, _Drawn):
    pass


def test_every_widget_is_drawn_as_django_draws_it_twice_over():
    cases = [
        None,
        {},
        {"status": "active"},
        {"status": "nonsense", "name": "Wren"},  # an error on status, a typed name
        {"name": "far too long a name"},  # an error on name
    ]
    for data in cases:
        for _ in range(2):  # the second time from the cache, where it keeps one
            form = SharedDrawn(data)
            if data is not None:
                form.is_valid()
            for name in ("status", "name"):
                assert str(form[name]) == _as_django_draws(form, name), (data, name)


def test_typed_values_and_fields_with_errors_are_not_kept():
    widgets._DRAWN.clear()
    for n in range(20):
        form = SharedDrawn({"name": f"N{n}", "status": "bad"})
        form.is_valid()
        str(form["name"]), str(form["status"])
    assert widgets._DRAWN == {}
    form = SharedDrawn({"status": "active"})
    form.is_valid()
    str(form["status"]), str(form["name"])
    assert {key[3:] for key in widgets._DRAWN} == {("status", "active"), ("name", None)}


def test_the_filter_forms_selected_option_follows_the_request():
    everyone = MemberFilterForm({})
    muted = MemberFilterForm({"status": "muted"})
    assert everyone.is_valid() and muted.is_valid()
    for _ in range(2):
        assert '<option value="" selected>' in str(everyone["status"])
        assert '<option value="muted" selected>' in str(muted["status"])
        assert str(muted["status"]) == _as_django_draws(muted, "status")
    log = LogFilterForm({"kind": "warn"})
    assert log.is_valid()
    assert str(log["kind"]) == _as_django_draws(log, "kind")
