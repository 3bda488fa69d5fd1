from allauth.account.forms import ChangePasswordForm as AllauthChangePasswordForm
from allauth.account.forms import LoginForm as AllauthLoginForm
from allauth.account.forms import SignupForm as AllauthSignupForm
from django import forms
from django.contrib.auth import password_validation

from accounts.models import User
from supportgroups.widgets import Textarea

PASSWORD_ADVICE = "At least 12 characters. A few unrelated words work well."


class ContactDetailsForm(forms.Form):
    phone = forms.CharField(
        label="Phone number",
        required=False,
        max_length=40,
        help_text=(
            "Stored encrypted. No other member ever sees it. A facilitator of "
            "your group can see it only in a safety emergency, after writing down why — "
            "and you will see that they did, under “Who has seen my data”."
        ),
    )
    emergency_contact = forms.CharField(
        label="Emergency contact",
        required=False,
        max_length=300,
        widget=Textarea(attrs={"rows": 3}),
        help_text=(
            "A name and a way to reach them. Stored encrypted and shown only in "
            "the same emergency as your phone number, with the same record for you to see."
        ),
    )

    def clean_phone(self):
        phone = self.cleaned_data["phone"].strip()
        allowed = set("0123456789+-() ")
        if phone and (not set(phone) <= allowed or sum(c.isdigit() for c in phone) < 6):
            raise forms.ValidationError(
                "Please enter a phone number using digits, spaces and + - ( ) only."
            )
        return phone

    def clean_emergency_contact(self):
        return self.cleaned_data["emergency_contact"].strip()


class RecoveryEmailForm(forms.Form):
    email = forms.EmailField(
        label="Recovery email",
        max_length=254,
        help_text=(
            "Optional. Used only to reset your password and never shown to anyone. "
            "Stored encrypted. We'll send a link to confirm it."
        ),
    )


class TwoFactorCodeForm(forms.Form):
    """The second step of signing in. The app's 6-digit code by default (a phone offers its
    number pad and the code from a text or the app); ``backup=True`` asks for a backup code,
    whose letters a number pad could not type."""

    code = forms.CharField(
        label="Code",
        max_length=20,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
        help_text="The 6-digit code your authenticator app shows now.",
    )

    def __init__(self, *args, backup: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if backup:
            field = self.fields["code"]
            field.label = "Backup code"
            field.help_text = "One of the backup codes you kept when you turned on two-factor."
            field.widget.attrs["autocomplete"] = "off"
            field.widget.attrs["inputmode"] = "text"


class PasswordResetRequestForm(forms.Form):
    email = forms.EmailField(
        label="Your recovery email",
        max_length=254,
        help_text="If it is the confirmed recovery email of an account, we'll send a link.",
    )


class _NewPasswordMixin(forms.Form):
    password1 = forms.CharField(
        label="New password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=PASSWORD_ADVICE,
    )
    password2 = forms.CharField(
        label="New password again",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean(self):
        cleaned = super().clean()
        first, second = cleaned.get("password1"), cleaned.get("password2")
        if first and second and first != second:
            self.add_error("password2", "The two passwords don't match.")
        elif first:
            try:
                password_validation.validate_password(first, self.password_user())
            except forms.ValidationError as error:
                self.add_error("password1", error)
        return cleaned

    def password_user(self):
        return None


class BackupCodePasswordResetForm(_NewPasswordMixin):
    handle = forms.CharField(
        label="Login handle",
        max_length=150,
        widget=forms.TextInput(attrs={"autocomplete": "username"}),
    )
    code = forms.CharField(
        label="Backup code", max_length=20, widget=forms.TextInput(attrs={"autocomplete": "off"})
    )

    field_order = ["handle", "code", "password1", "password2"]

    def password_user(self):
        # Checked against the handle typed, without looking anyone up.
        return User(username=self.cleaned_data.get("handle", ""))


class LoginForm(AllauthLoginForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["login"].label = "Login handle"


class ChangePasswordForm(AllauthChangePasswordForm):
    """allauth's form, in the words of the sign-up page."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["oldpassword"].label = "Current password"
        self.fields["password1"].label = "New password"
        self.fields["password1"].help_text = PASSWORD_ADVICE
        self.fields["password2"].label = "New password again"


class SignupForm(AllauthSignupForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["username"].label = "Login handle"
        self.fields[
            "username"
        ].help_text = "Private: only you use it, to sign in. Not your real name or email."
        self.fields["password1"].help_text = PASSWORD_ADVICE


class TwoFactorSetupForm(forms.Form):
    code = forms.CharField(
        label="Code",
        max_length=10,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
        help_text="The 6-digit code your authenticator app shows now.",
    )
