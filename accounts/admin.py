from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.admin import UserAdmin
from django.http import HttpResponseRedirect
from django.urls import reverse

from accounts import services
from accounts.models import User
from audit.services import request_ip

# The only filters the account list takes: a lookup through memberships
# (?memberships=<id>) would put a login handle beside a pseudonym outside the one audited
# path (the Membership page, groups/admin.py).
ACCOUNT_FILTERS = ("is_staff", "is_superuser", "is_active")


@admin.register(User)
class AccountAdmin(UserAdmin):
    """Admins see login handles (never pseudonyms next to them) and no contact details.
    Every save goes through the accounts services, audited."""

    list_display = ("username", "is_staff", "is_active", "date_joined", "last_login")
    list_filter = ACCOUNT_FILTERS
    search_fields = ("username",)
    ordering = ("username",)
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        ("Access", {"fields": ("is_active", "is_staff", "is_superuser")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("username", "password1", "password2")}),
    )
    filter_horizontal = ()
    readonly_fields = ("last_login", "date_joined")

    def lookup_allowed(self, lookup, value, request=None):
        return lookup.split("__")[0] in ACCOUNT_FILTERS and super().lookup_allowed(
            lookup, value, request
        )

    def has_delete_permission(self, request, obj=None):
        # A person deletes their own account (privacy); the admin's confirmation page
        # would also list their memberships by pseudonym.
        return False

    def save_model(self, request, obj, form, change):
        if change:
            services.account_update_by_admin(
                actor=request.user,
                user=obj,
                changed=list(form.changed_data),
                ip=request_ip(request),
            )
        else:
            services.account_create_by_admin(actor=request.user, user=obj, ip=request_ip(request))

    def user_change_password(self, request, id, form_url=""):
        """Django's page, but a valid new password is set by the accounts service (audited;
        the person's sessions and sockets end), not by the form."""
        user = self.get_object(request, unquote(id))
        allowed = user is not None and self.has_change_permission(request, user)
        if request.method != "POST" or not allowed:
            return super().user_change_password(request, id, form_url)
        form = self.change_password_form(user, request.POST)
        if not form.is_valid():
            return super().user_change_password(request, id, form_url)
        usable = form.cleaned_data["set_usable_password"]
        if not usable and "unset-password" not in request.POST:
            return super().user_change_password(request, id, form_url)  # (it says why)
        services.password_set_by_admin(
            actor=request.user,
            user=user,
            password=form.cleaned_data["password1"] if usable else None,
            ip=request_ip(request),
            current_session_key=request.session.session_key or "",
        )
        if user.pk == request.user.pk:
            # Their own: this session stays signed in with the new password (as Django's
            # own page does).
            update_session_auth_hash(request, user)
        messages.success(
            request,
            "Password changed. Their sessions have ended."
            if usable
            else "Password-based authentication was disabled. Their sessions have ended.",
        )
        return HttpResponseRedirect(reverse("admin:accounts_user_change", args=(user.pk,)))
