"""The member's side of a security incident: marking its notice read (mounted at
/notices/, for anyone signed in; the notice itself is on every page)."""

from django.urls import path

from console import incident_views

app_name = "notices"

urlpatterns = [
    path("<int:notice_id>/read/", incident_views.notice_read, name="read"),
]
