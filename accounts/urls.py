"""Sign-in pages (allauth's views where they fit, ours where email must stay encrypted)
and the privacy centre at /account/."""

from allauth.account import views as allauth_views
from django.urls import path, re_path

from accounts import views

# Mounted at /accounts/: the same paths and names allauth uses.
auth_urlpatterns = [
    path("login/", allauth_views.login, name="account_login"),
    path("login/two-factor/", views.two_factor_login, name="account_two_factor_login"),
    path("logout/", allauth_views.logout, name="account_logout"),
    path("inactive/", allauth_views.account_inactive, name="account_inactive"),
    path("signup/", views.signup, name="account_signup"),
    path("reauthenticate/", allauth_views.reauthenticate, name="account_reauthenticate"),
    path("password/change/", views.password_change, name="account_change_password"),
    path("password/reset/", views.password_reset, name="account_reset_password"),
    path("password/reset/done/", views.password_reset_done, name="account_reset_password_done"),
    path(
        "password/reset/backup-code/",
        views.password_reset_with_backup_code,
        name="account_reset_password_backup_code",
    ),
    re_path(
        r"^password/reset/key/(?P<uidb36>[0-9A-Za-z]+)-(?P<key>.+)/$",
        views.password_reset_from_key,
        name="account_reset_password_from_key",
    ),
    # allauth's email pages would keep addresses in clear; send people to ours.
    path("email/", views.email_management_moved, name="account_email_allauth"),
]

# Mounted at /account/: the privacy centre (with privacy.urls: export, deletion and
# "Who has seen my data").
account_urlpatterns = [
    path("", views.account_home, name="account_home"),
    path("contact/", views.contact_details, name="account_contact"),
    path("email/", views.recovery_email, name="account_email"),
    path("email/verify/<str:token>/", views.verify_email, name="account_verify_email"),
    path("sessions/", views.sessions, name="account_sessions"),
    path("two-factor/", views.two_factor, name="account_two_factor"),
    path("two-factor/set-up/", views.two_factor_setup, name="account_two_factor_setup"),
    path("two-factor/turn-off/", views.two_factor_disable, name="account_two_factor_disable"),
    path(
        "two-factor/backup-codes/",
        views.backup_codes_regenerate,
        name="account_backup_codes_regenerate",
    ),
]
