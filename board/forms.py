from django import forms

from board.services import BODY_MAX_LENGTH, THREAD_STATES, TITLE_MAX_LENGTH
from supportgroups.widgets import SharedWidgetForm, Textarea


class ThreadForm(forms.Form):
    title = forms.CharField(
        max_length=TITLE_MAX_LENGTH,
        strip=True,
        error_messages={"required": "Give your thread a title: a few words are enough."},
    )
    body = forms.CharField(
        label="What you want to say",
        max_length=BODY_MAX_LENGTH,
        strip=True,
        error_messages={"required": "Write what you want to say."},
        widget=Textarea(attrs={"rows": 8}),
    )


class ReplyForm(SharedWidgetForm):
    body = forms.CharField(
        label="Your reply",
        max_length=BODY_MAX_LENGTH,
        strip=True,
        error_messages={"required": "Write your reply first."},
        widget=Textarea(attrs={"rows": 5}),
    )


class ThreadStateForm(forms.Form):
    state = forms.ChoiceField(choices=[(state, state) for state in THREAD_STATES])
    value = forms.BooleanField(required=False)
