from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from accounts.models import User


@admin.register(User)
class AccountAdmin(UserAdmin):
    """Admins see login handles (never pseudonyms next to them) and no contact details."""

    list_display = ("username", "is_staff", "is_active", "date_joined", "last_login")
    list_filter = ("is_staff", "is_superuser", "is_active")
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

    def save_model(self, request, obj, form, change):
        if not change:
            obj.save()
            return
        from accounts.services import account_update_by_admin

        account_update_by_admin(
            actor=request.user, user=obj, changed=list(form.changed_data), request=request
        )
