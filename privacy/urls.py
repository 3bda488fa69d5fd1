"""Mounted at /account/ beside the account pages: the same paths and names as before
privacy became its own app, so bookmarks and links keep working."""

from django.urls import path

from privacy import views

urlpatterns = [
    path("activity/", views.activity, name="account_activity"),
    path("export/", views.export, name="account_export"),
    path("delete/", views.delete_account, name="account_delete"),
    path("consents/", views.consents, name="account_consents"),
    path("consents/<int:consent_id>/", views.consent, name="account_consent"),
    path(
        "consents/<int:consent_id>/withdraw/",
        views.consent_withdraw,
        name="account_consent_withdraw",
    ),
]
