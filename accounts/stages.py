"""Two-factor authentication as an allauth login stage.

When the password is right and the person has an authenticator app, allauth pauses the
login here: nobody is signed in until the second code is accepted.
"""

from allauth.account.authentication import AUTHENTICATION_METHODS_SESSION_KEY
from allauth.account.stages import LoginStage
from allauth.core.internal.httpkit import headed_redirect_response

from accounts.selectors import user_has_two_factor


class TwoFactorStage(LoginStage):
    key = "two_factor"
    urlname = "account_two_factor_login"

    def handle(self):
        user = self.login.user
        if user is None or not user_has_two_factor(user):
            return None, True
        # A new session key between the password step and the code step.
        self.request.session.cycle_key()
        # allauth notes the handle typed with the password. Until the code is accepted this
        # session belongs to nobody, so deleting the account would not find it: keep only
        # what allauth needs (method and time), never the handle.
        records = self.request.session.get(AUTHENTICATION_METHODS_SESSION_KEY)
        if isinstance(records, list):
            self.request.session[AUTHENTICATION_METHODS_SESSION_KEY] = [
                {key: value for key, value in record.items() if key not in {"username", "email"}}
                for record in records
            ]
        return headed_redirect_response(self.urlname), True
