"""Two-factor authentication as an allauth login stage.

When the password is right and the person has an authenticator app, allauth pauses the
login here: nobody is signed in until the second code is accepted.
"""

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
        return headed_redirect_response(self.urlname), True
