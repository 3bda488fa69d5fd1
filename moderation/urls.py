from django.urls import path

from moderation import views

app_name = "moderation"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("about-me/", views.about_me, name="about_me"),
    path("<slug:slug>/", views.group_dashboard, name="group"),
    path("<slug:slug>/members/", views.members, name="members"),
    path("<slug:slug>/log/", views.log, name="log"),
    path("<slug:slug>/safety/", views.raise_flag, name="raise_flag"),
    path("<slug:slug>/members/<int:membership_id>/", views.member, name="member"),
    path("<slug:slug>/members/<int:membership_id>/reveal/", views.reveal, name="reveal"),
    path("<slug:slug>/reports/<int:report_id>/", views.report, name="report"),
    path(
        "<slug:slug>/board/<int:number>/<int:post_number>/report/",
        views.report_post,
        name="report_post",
    ),
    path(
        "<slug:slug>/board/<int:number>/<int:post_number>/hide/",
        views.hide_post,
        name="hide_post",
    ),
    path("<slug:slug>/flags/<int:flag_id>/handled/", views.handle_flag, name="handle_flag"),
]
