from django import forms


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
