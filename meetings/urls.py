from django.urls import path

from meetings import views

app_name = "meetings"

urlpatterns = [
    path("<int:meeting_id>/", views.room, name="room"),
    path("<int:meeting_id>/open/", views.open_room, name="open"),
    path("<int:meeting_id>/close/", views.close_room, name="close"),
    path("<int:meeting_id>/attendance/", views.attendance, name="attendance"),
    path("group/<slug:slug>/", views.schedule, name="schedule"),
]
