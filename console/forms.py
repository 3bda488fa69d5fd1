from datetime import datetime, time, timedelta

from django import forms
from django.utils import timezone

from accounts.selectors import user_by_handle
from audit.events import Action
from audit.selectors import EventFilters
from audit.services import ip_blind_index
from groups.models import Group
from supportgroups.widgets import Textarea
from supportgroups.zones import ZonedTimesForm

MEMBERSHIP_TARGET = "groups.membership"


def _action_choices():
    grouped: dict[str, list] = {}
    for action in Action:
        grouped.setdefault(action.app.capitalize(), []).append((str(action.value), action.label))
    return [("", "Any action"), *grouped.items()]


class EventFilterForm(forms.Form):
    actor = forms.CharField(label="Done by (login handle)", required=False, max_length=150)
    subject = forms.CharField(label="About (login handle)", required=False, max_length=150)
    action = forms.ChoiceField(label="Action", required=False, choices=_action_choices)
    group = forms.TypedChoiceField(label="Group", required=False, coerce=int, empty_value=None)
    target_type = forms.CharField(
        label="Target type", required=False, max_length=50, help_text="e.g. screening.application"
    )
    target_id = forms.CharField(label="Target id", required=False, max_length=64)
    since = forms.DateField(
        label="From", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        label="To (inclusive)", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    ip = forms.GenericIPAddressField(label="IP address", required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["group"].choices = [("", "Any group")] + list(
            Group.objects.order_by("name").values_list("pk", "name")
        )

    def clean(self):
        cleaned = super().clean()
        for field in ("actor", "subject"):
            handle = cleaned.get(field, "").strip()
            cleaned[f"{field}_id"] = None
            if handle:
                user = user_by_handle(handle)
                if user is None:
                    self.add_error(field, "No account has that login handle.")
                else:
                    cleaned[f"{field}_id"] = user.pk
        target_type = cleaned.get("target_type", "").strip()
        if cleaned.get("target_id", "").strip():
            if not target_type:
                self.add_error("target_type", "Say what kind of target the id is of.")
            elif target_type == MEMBERSHIP_TARGET:
                # Its events name the account beside the membership: the one way to see
                # who is behind a pseudonym is the Django admin's Membership page, which
                # records the look for the member to see.
                self.add_error(
                    "target_id",
                    "A membership's events can't be looked up by its id here. The Membership "
                    "page of the Django admin shows its account, and records that you looked.",
                )
        return cleaned

    def filters(self) -> EventFilters:
        data = self.cleaned_data
        tz = timezone.get_current_timezone()
        since = data.get("since")
        until = data.get("until")
        return EventFilters(
            actor_id=data.get("actor_id"),
            subject_id=data.get("subject_id"),
            actions=(int(data["action"]),) if data.get("action") else (),
            group_id=data.get("group"),
            target_type=data.get("target_type", "").strip(),
            target_id=data.get("target_id", "").strip(),
            since=datetime.combine(since, time.min, tzinfo=tz) if since else None,
            until=datetime.combine(until, time.min, tzinfo=tz) + timedelta(days=1)
            if until
            else None,
            ip_index=ip_blind_index(data["ip"]) if data.get("ip") else "",
        )


class PersonForm(forms.Form):
    handle = forms.CharField(label="Login handle", max_length=150)

    def clean_handle(self):
        user = user_by_handle(self.cleaned_data["handle"])
        if user is None:
            raise forms.ValidationError("No account has that login handle.")
        return user


# --- incidents -------------------------------------------------------------------------


class IncidentForm(ZonedTimesForm):
    zoned_fields = ("detected_at",)
    title = forms.CharField(
        label="What happened, in one line",
        max_length=200,
        help_text="Stored encrypted. Never shown to members.",
    )
    description = forms.CharField(
        label="What happened",
        max_length=5000,
        widget=Textarea(attrs={"rows": 5}),
        help_text="What you know so far: how it was noticed, what may have been seen or taken. "
        "Stored encrypted; it goes into the regulator's report, never to members.",
    )
    detected_at = forms.DateTimeField(
        label="When it was detected",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text="The regulator must be told within 72 hours of this.",
    )
    accounts = forms.CharField(
        label="Affected accounts (login handles, one per line)",
        required=False,
        help_text="The members of the groups an affected facilitator runs are affected too.",
        max_length=20000,
        widget=Textarea(attrs={"rows": 3}),
    )
    groups = forms.ModelMultipleChoiceField(
        label="Affected groups",
        required=False,
        queryset=Group.objects.order_by("name"),
        widget=forms.CheckboxSelectMultiple,
    )

    def clean(self):
        cleaned = super().clean()  # detected_at is now the instant meant, in its zone
        detected_at = cleaned.get("detected_at")
        if detected_at is not None and detected_at > timezone.now():
            self.add_error("detected_at", "It can't be in the future.")
        return cleaned

    def clean_accounts(self):
        handles = [line.strip() for line in self.cleaned_data["accounts"].splitlines()]
        handles = list(dict.fromkeys(h for h in handles if h))
        users, unknown = [], []
        for handle in handles:
            user = user_by_handle(handle)
            if user is None:
                unknown.append(handle)
            elif user not in users:
                users.append(user)
        if unknown:
            raise forms.ValidationError(
                "No account has the login handle %(handles)s.",
                params={"handles": ", ".join(unknown)},
            )
        return users


class ConfirmForm(forms.Form):
    """Every step of a breach response is confirmed before it is done."""

    confirm = forms.BooleanField(
        label="I understand what this does and want to do it now.",
        error_messages={"required": "Tick the box to confirm."},
    )


class SignOutForm(ConfirmForm):
    scope = forms.ChoiceField(
        label="Sign out",
        choices=[
            ("affected", "The affected accounts"),
            ("everyone", "Everyone (but this session of yours)"),
        ],
        widget=forms.RadioSelect,
        initial="affected",
    )
    field_order = ["scope", "confirm"]


class RegulatorForm(ZonedTimesForm):
    zoned_fields = ("notified_at",)
    notified_at = forms.DateTimeField(
        label="When the regulator was told",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    reference = forms.CharField(
        label="Their reference", required=False, max_length=200, help_text="Stored encrypted."
    )
