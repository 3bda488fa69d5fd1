from datetime import timedelta

from django import forms
from django.utils import timezone

from meetings.models import Recurrence
from supportgroups.zones import wall_time_in, zone_named


class MeetingForm(forms.Form):
    title = forms.CharField(max_length=120, initial="Weekly meeting")
    starts_at = forms.DateTimeField(
        label="Starts",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
        help_text="In your own time zone.",
    )
    duration_minutes = forms.IntegerField(
        label="Length (minutes)", min_value=15, max_value=8 * 60, initial=90
    )
    recurrence = forms.ChoiceField(choices=Recurrence.choices, initial=Recurrence.NONE)
    occurrences = forms.IntegerField(
        label="How many meetings",
        min_value=1,
        max_value=26,
        initial=1,
        help_text="For repeating meetings: how many to put in the calendar now.",
    )
    # Filled in by the browser (static/js/local-time.js) so times mean the facilitator's.
    timezone = forms.CharField(widget=forms.HiddenInput, required=False)

    def clean(self):
        cleaned = super().clean()
        starts_at = cleaned.get("starts_at")
        if starts_at is None:
            return cleaned
        starts = wall_time_in(starts_at, zone_named(cleaned.get("timezone") or ""))
        if starts < timezone.now() - timedelta(minutes=5):
            self.add_error("starts_at", "Please choose a time in the future.")
        cleaned["starts_at"] = starts
        if cleaned.get("duration_minutes"):
            cleaned["ends_at"] = starts + timedelta(minutes=cleaned["duration_minutes"])
        return cleaned
