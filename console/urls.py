from django.urls import path

from console import views

# Named "audit" as before: /audit/ and audit:events are what admins and links know.
app_name = "audit"

urlpatterns = [
    path("", views.events, name="events"),
    path("export/", views.export, name="export"),
    path("people/", views.person, name="person"),
    path("groups/<int:group_id>/", views.group_access, name="group_access"),
    path("signals/", views.signals, name="signals"),
]
