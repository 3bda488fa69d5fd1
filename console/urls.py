from django.urls import path

from console import incident_views, views

# Named "audit" as before: /audit/ and audit:events are what admins and links know.
app_name = "audit"

urlpatterns = [
    path("", views.events, name="events"),
    path("export/", views.export, name="export"),
    path("people/", views.person, name="person"),
    path("groups/<int:group_id>/", views.group_access, name="group_access"),
    path("signals/", views.signals, name="signals"),
    path("incidents/", incident_views.incident_list, name="incidents"),
    path("incidents/new/", incident_views.incident_open, name="incident_open"),
    path("incidents/<int:incident_id>/", incident_views.incident_detail, name="incident"),
    path(
        "incidents/<int:incident_id>/sign-out/",
        incident_views.incident_sign_out,
        name="incident_sign_out",
    ),
    path(
        "incidents/<int:incident_id>/renew-credentials/",
        incident_views.incident_renew_credentials,
        name="incident_renew_credentials",
    ),
    path(
        "incidents/<int:incident_id>/hold-meetings/",
        incident_views.incident_hold_meetings,
        name="incident_hold_meetings",
    ),
    path(
        "incidents/<int:incident_id>/lift-hold/",
        incident_views.incident_lift_hold,
        name="incident_lift_hold",
    ),
    path(
        "incidents/<int:incident_id>/rotate-keys/",
        incident_views.incident_rotate_keys,
        name="incident_rotate_keys",
    ),
    path(
        "incidents/<int:incident_id>/rotate-keys/step/",
        incident_views.incident_rotate_keys_step,
        name="incident_rotate_keys_step",
    ),
    path(
        "incidents/<int:incident_id>/notify/",
        incident_views.incident_notify,
        name="incident_notify",
    ),
    path(
        "incidents/<int:incident_id>/regulator/",
        incident_views.incident_regulator,
        name="incident_regulator",
    ),
    path(
        "incidents/<int:incident_id>/close/",
        incident_views.incident_close,
        name="incident_close",
    ),
    path(
        "incidents/<int:incident_id>/report/",
        incident_views.incident_report,
        name="incident_report",
    ),
]
