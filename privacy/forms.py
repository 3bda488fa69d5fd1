from django import forms

from accounts.selectors import user_by_handle
from groups.models import Group
from privacy.models import Item, LegalBasis
from supportgroups.widgets import Textarea


class DeleteAccountForm(forms.Form):
    CONFIRMATION = "delete my account"

    confirm = forms.CharField(
        label=f"Type “{CONFIRMATION}” to confirm",
        max_length=40,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )

    def clean_confirm(self):
        value = self.cleaned_data["confirm"].strip().lower()
        if value != self.CONFIRMATION:
            raise forms.ValidationError(f"Please type “{self.CONFIRMATION}” exactly.")
        return value


# --- consent requests and legal disclosures ------------------------------------------------

WHAT_HELP = (
    "Only what you choose goes into the file. The member reads exactly what it would hold "
    "before they answer."
)


def _summary_written_if_chosen(form: forms.Form, cleaned: dict) -> dict:
    if Item.SUMMARY in cleaned.get("items", []) and not cleaned.get("summary", "").strip():
        form.add_error("summary", "Write the summary, or untick it above.")
    return cleaned


class ConsentRequestForm(forms.Form):
    items = forms.MultipleChoiceField(
        label="What would be shared",
        choices=Item.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text=WHAT_HELP,
    )
    summary = forms.CharField(
        label="Your written summary (if you chose it above)",
        required=False,
        max_length=5000,
        widget=Textarea(attrs={"rows": 5}),
    )
    recipient = forms.CharField(
        label="Who would receive it",
        max_length=300,
        help_text="A person and their organisation, e.g. “Dr A. Patel, Riverside Clinic”.",
    )
    purpose = forms.CharField(
        label="What it is for",
        max_length=1000,
        widget=Textarea(attrs={"rows": 3}),
    )
    valid_until = forms.DateField(
        label="Consent lasts until (the last day)",
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    def clean(self):
        return _summary_written_if_chosen(self, super().clean())


class ConsentAnswerForm(forms.Form):
    """The member's answer. ``shown`` is the fingerprint of the preview their page showed."""

    answer = forms.ChoiceField(choices=[("approve", "Approve"), ("decline", "Decline")])
    shown = forms.CharField(max_length=64, widget=forms.HiddenInput)


class LegalDisclosureForm(forms.Form):
    handle = forms.CharField(label="The member's login handle", max_length=150)
    group = forms.TypedChoiceField(
        label="The group whose records these are",
        required=False,
        coerce=int,
        empty_value=None,
        help_text="Needed for intake answers and attendance.",
    )
    items = forms.MultipleChoiceField(
        label="What is disclosed", choices=Item.choices, widget=forms.CheckboxSelectMultiple
    )
    summary = forms.CharField(
        label="Written summary (if chosen above)",
        required=False,
        max_length=5000,
        widget=Textarea(attrs={"rows": 4}),
    )
    description = forms.CharField(
        label="What is disclosed, in words (as the member will read it)",
        max_length=1000,
        widget=Textarea(attrs={"rows": 2}),
    )
    legal_basis = forms.ChoiceField(
        label="Legal basis", choices=LegalBasis.choices, widget=forms.RadioSelect
    )
    basis_other = forms.CharField(
        label="The legal obligation (for “Another legal obligation”)",
        required=False,
        max_length=500,
    )
    reference = forms.CharField(
        label="Reference", max_length=300, help_text="e.g. the court order's or request's number"
    )
    recipient = forms.CharField(label="Who receives it", max_length=300)
    restricted_until = forms.DateField(
        label="The law restricts telling the member until",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Leave empty unless a legal restriction applies: the member is then told "
        "automatically on that day, and sees nothing of it before.",
    )
    password = forms.CharField(
        label="Your password, to confirm it is you",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    def __init__(self, user, *args, **kwargs):  # noqa: ANN001
        super().__init__(*args, **kwargs)
        self.user = user
        self.password_failed = False
        self.fields["group"].choices = [("", "No group (account details only)")] + list(
            Group.objects.order_by("name").values_list("pk", "name")
        )

    def clean_handle(self):
        subject = user_by_handle(self.cleaned_data["handle"])
        if subject is None:
            raise forms.ValidationError("No account has that login handle.")
        return subject

    def clean_group(self):
        group_id = self.cleaned_data.get("group")
        return Group.objects.filter(pk=group_id).first() if group_id else None

    def clean_password(self):
        if not self.user.check_password(self.cleaned_data["password"]):
            self.password_failed = True
            raise forms.ValidationError("That is not your password.")
        return ""

    def clean(self):
        cleaned = super().clean()
        if Item.SUMMARY in cleaned.get("items", []) and not cleaned.get("summary", "").strip():
            self.add_error("summary", "Write the summary, or untick it above.")
        if (
            cleaned.get("legal_basis") == LegalBasis.OTHER
            and not cleaned.get("basis_other", "").strip()
        ):
            self.add_error("basis_other", "Describe the legal obligation.")
        return cleaned


class AccessReviewForm(forms.Form):
    handle = forms.CharField(label="Login handle", max_length=150)

    def clean_handle(self):
        user = user_by_handle(self.cleaned_data["handle"])
        if user is None:
            raise forms.ValidationError("No account has that login handle.")
        return user
