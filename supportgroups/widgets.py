"""Form widgets shared by every app."""

from django import forms


class Textarea(forms.Textarea):
    """A text box without the browser's ``maxlength``: a browser cuts pasted text off at
    that length without a word, and nothing a person typed may be lost. The form checks
    the length instead and says how much is too much, keeping the text."""

    def build_attrs(self, base_attrs, extra_attrs=None):
        attrs = super().build_attrs(base_attrs, extra_attrs)
        attrs.pop("maxlength", None)
        return attrs


# A field's drawn widget, by (form class, prefix, ids, field, value): see SharedWidgetForm.
_DRAWN: dict[tuple, str] = {}


class _SharedWidgetBoundField(forms.BoundField):
    def __str__(self) -> str:
        value = self.value()
        if self.errors or not _shareable(self.field, value):
            return super().__str__()
        key = (type(self.form), self.form.prefix, self.form.auto_id, self.name, value)
        drawn = _DRAWN.get(key)
        if drawn is None:
            drawn = _DRAWN.setdefault(key, super().__str__())
        return drawn


def _shareable(field: forms.Field, value: object) -> bool:
    """An empty value, or one of a choice field's own choices: values nobody can make up
    new ones of, so the cache stays as small as the form."""
    if value is None or value == "":
        return True
    if isinstance(field, forms.ChoiceField) and isinstance(value, str):
        return any(value == str(choice) for choice, _ in field.choices)
    return False


class SharedWidgetForm(forms.Form):
    """A form whose fields' widgets, drawn empty or with one of their choices and without
    errors, are drawn once per process and shared: the same HTML for every request (a
    select's options each went through the form renderer's templates on every page:
    a tenth of the member list's time, ``python -m bench.profile_pages``). Only for forms
    whose fields, widgets and choices are the same for every instance (nothing set in
    ``__init__``); a field with an error, or a value someone typed, is drawn as usual."""

    bound_field_class = _SharedWidgetBoundField
