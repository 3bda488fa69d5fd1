from django.urls import path

from groups import views

app_name = "groups"

urlpatterns = [
    path("", views.directory, name="directory"),
    path("mine/", views.my_groups, name="mine"),
    path("new/", views.new_group, name="new"),
    path("link/<str:token>/", views.group_by_link, name="by_link"),
    path("invitation/<str:token>/", views.invitation, name="invitation"),
    path("<slug:slug>/", views.group_detail, name="detail"),
    path("<slug:slug>/home/", views.group_home, name="home"),
    path("<slug:slug>/join/", views.take_place, name="take_place"),
    path("<slug:slug>/agreement/sign/", views.sign, name="sign"),
    path("<slug:slug>/agreement/", views.agreements, name="agreements"),
    path("<slug:slug>/name/", views.change_pseudonym, name="change_pseudonym"),
    path("<slug:slug>/leave/", views.leave, name="leave"),
    path("<slug:slug>/manage/", views.manage, name="manage"),
    path("<slug:slug>/manage/edit/", views.edit, name="edit"),
    path("<slug:slug>/manage/agreement/", views.publish_agreement, name="publish_agreement"),
    path("<slug:slug>/manage/invitations/", views.create_invitation, name="create_invitation"),
    path("<slug:slug>/manage/link/", views.reset_link, name="reset_link"),
    path("<slug:slug>/manage/facilitators/", views.appoint_facilitator, name="appoint_facilitator"),
    path(
        "<slug:slug>/manage/facilitators/<int:membership_id>/remove/",
        views.remove_facilitator,
        name="remove_facilitator",
    ),
]
