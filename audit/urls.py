from django.urls import path

from audit import views

app_name = "audit"

urlpatterns = [
    path("", views.events, name="events"),
    path("export/", views.export, name="export"),
    path("people/", views.person, name="person"),
    path("groups/<int:group_id>/", views.group_access, name="group_access"),
    path("signals/", views.signals, name="signals"),
]
