from django.contrib import admin

from audit.events import Action
from audit.services import record_event, request_ip
from groups.models import AgreementVersion, Group, Guideline, Membership


class GuidelineInline(admin.TabularInline):
    model = Guideline
    extra = 0


@admin.register(Group)
class GroupAdmin(admin.ModelAdmin):
    list_display = ("name", "topic", "listed", "requires_screening", "capacity", "retention")
    list_filter = ("topic", "listed", "requires_screening")
    search_fields = ("name",)
    inlines = [GuidelineInline]

    # Groups are created and edited on their own pages, through the audited services.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AgreementVersion)
class AgreementVersionAdmin(admin.ModelAdmin):
    list_display = ("group", "version", "published_at")
    list_filter = ("group",)
    readonly_fields = ("group", "version", "text", "summary", "published_at", "published_by")

    def has_add_permission(self, request):
        return False  # published through the group's manage page, never edited

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    """The one place that shows the account behind a pseudonym. Opening a membership is
    recorded in the access log, and the member can see that it happened."""

    list_display = ("pseudonym", "group", "role", "status", "joined_at")
    list_filter = ("group", "role", "status")
    search_fields = ("pseudonym",)
    fields = (
        "group",
        "pseudonym",
        "user",
        "role",
        "status",
        "joined_at",
        "muted_until",
        "suspended_until",
    )

    def has_add_permission(self, request):
        return False  # places are given through screening or invitations

    def has_change_permission(self, request, obj=None):
        return False  # changes go through the groups and moderation services

    def has_delete_permission(self, request, obj=None):
        return False

    def change_view(self, request, object_id, form_url="", extra_context=None):
        membership = self.get_object(request, object_id)
        # Recorded only when the page is actually shown: a refused look reveals nothing.
        if (
            membership is not None
            and request.method == "GET"
            and self.has_view_or_change_permission(request, membership)
        ):
            record_event(
                action=Action.MEMBERSHIP_IDENTITY_VIEWED,
                actor=request.user,
                subject=membership.user,
                target=membership,
                group_id=membership.group_id,
                ip=request_ip(request),
            )
        extra_context = {
            **(extra_context or {}),
            "subtitle": (
                "Viewing this page shows the account behind a pseudonym. It is recorded in the "
                "access log and the member can see that it happened."
            ),
        }
        return super().change_view(request, object_id, form_url, extra_context)
