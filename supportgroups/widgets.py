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
