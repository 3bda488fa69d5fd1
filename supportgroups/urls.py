from django.contrib import admin
from django.urls import path

from accounts import views as account_views
from supportgroups import views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("leave/", account_views.leave_quickly, name="leave_quickly"),
    path("admin/", admin.site.urls),
]

handler404 = "supportgroups.errors.not_found"
handler500 = "supportgroups.errors.server_error"
