from django.urls import path

from screening import views

app_name = "screening"

urlpatterns = [
    path("apply/<slug:slug>/", views.apply, name="apply"),
    path("mine/", views.mine, name="mine"),
    path("mine/<int:application_id>/", views.application, name="application"),
    path("mine/<int:application_id>/answer/", views.provide_info, name="provide_info"),
    path("mine/<int:application_id>/withdraw/", views.withdraw, name="withdraw"),
    path("review/<slug:slug>/", views.queue, name="queue"),
    path("review/<slug:slug>/questions/", views.questionnaire, name="questionnaire"),
    path("review/<slug:slug>/<int:application_id>/", views.review, name="review"),
]
