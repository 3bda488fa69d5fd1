from django import forms

from screening.models import QuestionKind
from supportgroups.widgets import Textarea

YES_NO = [("yes", "Yes"), ("no", "No")]


class ApplicationForm(forms.Form):
    """One field per question. Deliberately lenient: the screening service checks every
    answer (and says what to fix) so that whatever was typed is shown again, never lost."""

    def __init__(self, questions, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.questions = list(questions)
        for question in self.questions:
            self.fields[self.field_name(question)] = self._field(question)

    @staticmethod
    def field_name(question) -> str:  # noqa: ANN001
        # Unsaved questions are the defaults a group shows before it stores any.
        return f"q_{question.pk}" if question.pk else f"q_default-{question.position}"

    def _field(self, question) -> forms.Field:  # noqa: ANN001
        field = self._lenient_field(question)
        # A draft may leave any answer empty, so the form requires nothing itself (the
        # service checks answers when the application is sent), but the page still says
        # which questions need one: includes/form_fields.html reads answer_required.
        field.answer_required = question.required
        if question.required:
            field.widget.attrs["aria-required"] = "true"
        return field

    @staticmethod
    def _lenient_field(question) -> forms.Field:  # noqa: ANN001
        common = {"label": question.text, "help_text": question.help_text, "required": False}
        choices = [(c, c) for c in question.choices]
        if question.kind == QuestionKind.LONG_TEXT:
            return forms.CharField(widget=Textarea(attrs={"rows": 5}), strip=False, **common)
        if question.kind == QuestionKind.SINGLE_CHOICE:
            return forms.CharField(widget=forms.RadioSelect(choices=choices), **common)
        if question.kind == QuestionKind.MULTIPLE_CHOICE:
            return forms.Field(widget=forms.CheckboxSelectMultiple(choices=choices), **common)
        if question.kind == QuestionKind.YES_NO:
            return forms.CharField(widget=forms.RadioSelect(choices=YES_NO), **common)
        return forms.CharField(strip=False, **common)

    def raw_answers(self, posted_keys) -> dict:  # noqa: ANN001
        """Answers by question id, plus any posted question this form doesn't know."""
        raw = {
            self.field_name(q)[2:]: self.cleaned_data.get(self.field_name(q))
            for q in self.questions
        }
        known = {self.field_name(q) for q in self.questions}
        for key in posted_keys:
            if key.startswith("q_") and key not in known:
                raw[key[2:]] = "?"
        return raw


class InfoResponseForm(forms.Form):
    response = forms.CharField(
        label="Your answer", widget=Textarea(attrs={"rows": 4}), max_length=4000
    )


class NoteForm(forms.Form):
    body = forms.CharField(
        label="Private note",
        widget=Textarea(attrs={"rows": 3}),
        max_length=4000,
        help_text="Seen only by this group's facilitators. Stored encrypted.",
    )


class DecisionForm(forms.Form):
    revision = forms.IntegerField(widget=forms.HiddenInput)
    message = forms.CharField(
        label="Message to the applicant",
        required=False,
        max_length=2000,
        widget=Textarea(attrs={"rows": 3}),
    )


class DeclineForm(DecisionForm):
    internal_reason = forms.CharField(
        label="Reason (private, for facilitators only)",
        required=False,
        max_length=2000,
        widget=Textarea(attrs={"rows": 2}),
    )


class InfoRequestForm(forms.Form):
    revision = forms.IntegerField(widget=forms.HiddenInput)
    question = forms.CharField(
        label="What would you like to ask?",
        max_length=2000,
        widget=Textarea(attrs={"rows": 3}),
        error_messages={"required": "Write the question to send to the applicant."},
    )


class QuestionForm(forms.Form):
    kind = forms.ChoiceField(choices=QuestionKind.choices)
    text = forms.CharField(label="Question", max_length=300)
    help_text = forms.CharField(label="Help text", max_length=500, required=False)
    required = forms.BooleanField(required=False, initial=True)
    choices = forms.CharField(
        label="Options (one per line, for choice questions)",
        required=False,
        widget=Textarea(attrs={"rows": 3}),
    )

    def has_changed(self) -> bool:
        # The blank "add a question" form posts its select's first kind and its ticked
        # "required" box like any browser does; with nothing typed it is still untouched,
        # so it must not be validated (or publishing an edit fails on "text required").
        if not self.initial:
            return any(
                str(self.data.get(self.add_prefix(name), "")).strip()
                for name in ("text", "help_text", "choices")
            )
        return super().has_changed()

    def clean(self):
        cleaned = super().clean()
        options = [line.strip() for line in cleaned.get("choices", "").splitlines() if line.strip()]
        if cleaned.get("kind") in (QuestionKind.SINGLE_CHOICE, QuestionKind.MULTIPLE_CHOICE):
            if len(options) < 2:
                self.add_error("choices", "A choice question needs at least two options.")
            if len(set(options)) != len(options):
                self.add_error("choices", "Each option must be different.")
        else:
            options = []
        cleaned["choices"] = options
        return cleaned


QuestionFormSet = forms.formset_factory(
    QuestionForm, extra=1, can_delete=True, can_order=True, max_num=40, validate_max=True
)
