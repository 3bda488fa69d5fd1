from zoneinfo import available_timezones

from django import forms

from accounts.selectors import user_by_handle
from groups.models import Group
from groups.pseudonyms import MAX_LENGTH
from supportgroups.widgets import SharedWidgetForm, Textarea


class GroupForm(forms.ModelForm):
    guidelines = forms.CharField(
        label="Guidelines",
        widget=Textarea(attrs={"rows": 6}),
        help_text="One rule per line. They are numbered in this order, so moderation can "
        "cite “rule 3”.",
    )

    class Meta:
        model = Group
        fields = [
            "name",
            "topic",
            "description",
            "eligibility",
            "meeting_rhythm",
            "meeting_time_zone",
            "listed",
            "requires_screening",
            "capacity",
            "show_member_count",
            "retention",
            "e2ee_meetings",
            "crisis_resources",
            "reapply_cooldown_days",
        ]
        widgets = {
            "description": Textarea(attrs={"rows": 4}),
            "eligibility": Textarea(attrs={"rows": 3}),
            "crisis_resources": Textarea(attrs={"rows": 3}),
        }

    def clean_meeting_time_zone(self) -> str:
        zone = self.cleaned_data["meeting_time_zone"].strip()
        if zone not in available_timezones():
            raise forms.ValidationError(
                "Please give a time zone by its name, such as Europe/London or America/New_York."
            )
        return zone

    def clean_guidelines(self):
        rules = [line.strip() for line in self.cleaned_data["guidelines"].splitlines()]
        rules = [rule for rule in rules if rule]
        if not rules:
            raise forms.ValidationError("Please write at least one guideline.")
        if any(len(rule) > 500 for rule in rules):
            raise forms.ValidationError("Each guideline can be at most 500 characters.")
        return rules


class NewGroupForm(GroupForm):
    agreement_text = forms.CharField(
        label="Confidentiality agreement (version 1)",
        widget=Textarea(attrs={"rows": 8}),
        help_text="Every member signs this before their first meeting.",
    )
    agreement_summary = forms.CharField(
        label="Agreement in one sentence",
        max_length=300,
        required=False,
        help_text="Shown to people before they apply.",
    )


class AgreementForm(forms.Form):
    text = forms.CharField(
        label="New version of the agreement",
        widget=Textarea(attrs={"rows": 10}),
        help_text="Publishing sends every member back to sign it before their next meeting.",
    )
    summary = forms.CharField(label="In one sentence", max_length=300, required=False)


class AppointFacilitatorForm(forms.Form):
    username = forms.CharField(
        label="Login handle of the new facilitator",
        max_length=150,
        help_text="Ask the person for their login handle. They will need two-factor "
        "authentication before they can use facilitator tools.",
    )

    def clean_username(self):
        user = user_by_handle(self.cleaned_data["username"], active_only=True)
        if user is None:
            raise forms.ValidationError("No active account has that login handle.")
        return user


class TakePlaceForm(forms.Form):
    pseudonym = forms.CharField(
        label="Your name in this group",
        max_length=60,
        help_text=f"3 to {MAX_LENGTH} characters. Other members see only this. Choose "
        "something that isn't your real name, your login handle, or a name you use in "
        "another group.",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    guidelines_acknowledged = forms.BooleanField(
        label="I have read the group's guidelines and will follow them.",
    )
    typed_name = forms.CharField(
        label="Sign the agreement by typing your name in this group",
        max_length=60,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )


class ResignForm(forms.Form):
    guidelines_acknowledged = forms.BooleanField(
        label="I have read the group's guidelines and will follow them.",
    )
    typed_name = forms.CharField(
        label="Sign by typing your name in this group",
        max_length=60,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )


class PseudonymForm(SharedWidgetForm):
    pseudonym = forms.CharField(
        label="New name in this group",
        max_length=60,
        help_text="You can change it once a day. Other members will see the new name.",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )


class InvitationForm(forms.Form):
    note = forms.CharField(
        label="Private note",
        max_length=100,
        required=False,
        help_text="A reminder for facilitators, e.g. “referral from the clinic”. "
        "Please don't write names.",
    )
