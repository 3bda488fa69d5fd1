"""Mounted at /disclosures/: sharing a member's information outside the app. A group's
facilitators ask for consent and make packages; admins record disclosures required by law."""

from django.urls import path

from privacy import views

app_name = "disclosures"

urlpatterns = [
    path("group/<slug:slug>/", views.group_consents, name="group_consents"),
    path(
        "group/<slug:slug>/members/<int:membership_id>/ask/",
        views.consent_new,
        name="consent_new",
    ),
    path(
        "group/<slug:slug>/consents/<int:consent_id>/package/",
        views.consent_package,
        name="consent_package",
    ),
    path("legal/", views.legal_disclosures, name="legal_list"),
    path("legal/new/", views.legal_disclosure_new, name="legal_new"),
    path("review/", views.access_review, name="access_review"),
]
