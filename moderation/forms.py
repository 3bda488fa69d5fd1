from django import forms

from groups.models import CURRENT_STATUSES, Status
from moderation.models import ActionKind, step_filter_label
from supportgroups.widgets import SharedWidgetForm, Textarea

# A short, explicit length comes first and is the default: an indefinite mute must be a
# choice made on purpose, not what one click on "Resolve" does (issue 21).
DURATIONS = [
    ("10", "10 minutes"),
    ("60", "1 hour"),
    ("1440", "1 day"),
    ("10080", "1 week"),
    ("43200", "30 days"),
    ("", "Until lifted (no end date)"),
]
DEFAULT_DURATION = "60"


def _guideline_choices(group):  # noqa: ANN001
    return [(g.number, f"Rule {g.number}: {g.text}") for g in group.guidelines.all()]


# What the facilitator does, said as a step to take (ActionKind's labels say what was done,
# for the history and the log).
STEPS = [
    (ActionKind.WARN, "Warn"),
    (ActionKind.MUTE, "Mute (can read in meetings, cannot write)"),
    (ActionKind.UNMUTE, "Lift a mute"),
    (ActionKind.SUSPEND, "Suspend (cannot enter meetings)"),
    (ActionKind.REMOVE, "Remove from the group"),
    (ActionKind.REINSTATE, "Reinstate"),
]


def _minutes(kind: str | None, duration: str | None) -> int | None:
    """The length the facilitator chose, for a step that lasts. "For" stands beside every
    step with 1 hour chosen (issue 21), so for a warning or a removal it is the page's
    default, not the facilitator's choice: it is not passed on (the service refuses a
    length with a step that does not last)."""
    if kind not in (ActionKind.MUTE, ActionKind.SUSPEND) or not duration:
        return None
    return int(duration)


class ActionForm(forms.Form):
    kind = forms.ChoiceField(label="Step", choices=STEPS)
    guideline = forms.TypedChoiceField(label="Guideline", coerce=int, required=False)
    reason = forms.CharField(
        label="Reason (the member will read this)",
        max_length=1000,
        required=False,
        widget=Textarea(attrs={"rows": 3}),
    )
    duration = forms.ChoiceField(
        label="For",
        choices=DURATIONS,
        required=False,
        initial=DEFAULT_DURATION,
        help_text="For mutes and suspensions.",
    )

    def __init__(self, group, *args, **kwargs):  # noqa: ANN001
        super().__init__(*args, **kwargs)
        self.fields["guideline"].choices = [("", "—"), *_guideline_choices(group)]

    def clean(self):
        cleaned = super().clean()
        cleaned["minutes"] = _minutes(cleaned.get("kind"), cleaned.get("duration"))
        if cleaned.get("guideline") == "":
            cleaned["guideline"] = None
        return cleaned


class ResolveForm(forms.Form):
    """One decision on a report: hide the message, act on its author, or both at once."""

    hide_message = forms.BooleanField(label="Hide the message or post", required=False)
    action = forms.ChoiceField(
        label="Outcome for the author",
        choices=[
            ("none", "No step about the author"),
            (ActionKind.WARN, "Warn the member"),
            (ActionKind.MUTE, "Mute the member"),
            (ActionKind.SUSPEND, "Suspend the member"),
            (ActionKind.REMOVE, "Remove the member"),
        ],
    )
    duration = forms.ChoiceField(
        label="For",
        choices=DURATIONS,
        required=False,
        initial=DEFAULT_DURATION,
        help_text="For a mute or a suspension.",
    )
    note = forms.CharField(
        label="Note (shown to the member with any step taken)",
        max_length=1000,
        required=False,
        widget=Textarea(attrs={"rows": 3}),
    )

    def clean(self):
        cleaned = super().clean()
        cleaned["minutes"] = _minutes(cleaned.get("action"), cleaned.get("duration"))
        return cleaned


class RevealForm(forms.Form):
    reason = forms.CharField(
        label="Why do you need this member's contact details now?",
        max_length=2000,
        widget=Textarea(attrs={"rows": 4}),
        help_text="This is recorded. The member will see that their details were opened, "
        "and the site's administrators are told.",
    )
    confirm = forms.BooleanField(
        label="I understand this is for a safety emergency only, and that it is recorded."
    )


class SafetyFlagForm(forms.Form):
    about = forms.TypedChoiceField(label="Who are you worried about?", coerce=int)
    note = forms.CharField(
        label="Anything the facilitators should know",
        required=False,
        max_length=2000,
        widget=Textarea(attrs={"rows": 4}),
    )

    def __init__(self, membership, members, *args, **kwargs):  # noqa: ANN001
        super().__init__(*args, **kwargs)
        self.fields["about"].choices = [(membership.pk, "Myself")] + [
            (m.pk, m.pseudonym) for m in members if m.pk != membership.pk and m.pseudonym
        ]


class CitingPostForm(forms.Form):
    """A step about a board post that cites one of the group's guidelines."""

    guideline = forms.TypedChoiceField(
        label="Which guideline does it break?",
        coerce=int,
        widget=forms.RadioSelect,
        error_messages={"required": "Choose the guideline it breaks."},
    )

    def __init__(self, guidelines, *args, **kwargs):  # noqa: ANN001
        super().__init__(*args, **kwargs)
        self.fields["guideline"].choices = [(g.number, f"{g.number}. {g.text}") for g in guidelines]


class ReportPostForm(CitingPostForm):
    """A member reports a post on the board, citing one of the group's guidelines."""

    note = forms.CharField(
        label="Anything the facilitators should know",
        required=False,
        max_length=2000,
        widget=Textarea(attrs={"rows": 3}),
    )


class HidePostForm(CitingPostForm):
    """A facilitator hides a post straight from its thread (as "Hide" in a meeting room),
    citing the guideline the author will read."""

    reason = forms.CharField(
        label="Reason the member will read",
        required=False,
        max_length=1000,
        widget=Textarea(attrs={"rows": 3}),
    )


class HandleFlagForm(forms.Form):
    note = forms.CharField(
        label="What was done (for the other facilitators)",
        required=False,
        max_length=2000,
        widget=Textarea(attrs={"rows": 2}),
    )


# --- the member list's and the moderation log's filters (GET) --------------------------------


class MemberFilterForm(SharedWidgetForm):
    status = forms.ChoiceField(
        required=False,
        choices=[("", "Everyone")]
        + [(s.value, s.label) for s in Status if s.value in CURRENT_STATUSES],
    )
    name = forms.CharField(required=False, max_length=30, label="Name in the group contains")
    after = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)


class LogFilterForm(SharedWidgetForm):
    kind = forms.ChoiceField(
        required=False,
        label="Step",
        # In the words of the log's rows (hiding covers board posts too).
        choices=[("", "Every step")] + [(kind, step_filter_label(kind)) for kind in ActionKind],
    )
    member = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)
    before = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)
