from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.http import Http404
from django.urls import include, path
from django_otp.admin import OTPAdminSite

from accounts import views as account_views
from accounts.urls import account_urlpatterns, auth_urlpatterns
from supportgroups import views

# The Django admin requires a 2FA-verified session (django-otp), and signs in through
# our own login pages rather than its own form.
admin.site.__class__ = OTPAdminSite


def _admin_login(request, extra_context=None):  # noqa: ANN001, ANN202, ARG001
    # Signed-in people who aren't (verified) admins get a plain "not found", not a loop
    # back to the sign-in page.
    if request.user.is_authenticated:
        raise Http404
    return redirect_to_login(request.get_full_path())


admin.site.login = _admin_login
admin.site.site_header = admin.site.site_title = "Support groups administration"

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("leave/", account_views.leave_quickly, name="leave_quickly"),
    path("accounts/", include(auth_urlpatterns)),
    path("account/", include(account_urlpatterns)),
    path("account/", include("privacy.urls")),
    path("disclosures/", include("privacy.disclosure_urls")),
    path("groups/", include("groups.urls")),
    path("groups/<slug:slug>/board/", include("board.urls")),
    path("meetings/", include("meetings.urls")),
    path("screening/", include("screening.urls")),
    path("moderation/", include("moderation.urls")),
    path("audit/", include("console.urls")),
    path("notices/", include("console.notice_urls")),
    path("admin/", admin.site.urls),
]

handler404 = "supportgroups.errors.not_found"
handler500 = "supportgroups.errors.server_error"
