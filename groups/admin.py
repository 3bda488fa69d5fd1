from django.contrib import admin

from audit.services import request_ip
from groups import services
from groups.models import AgreementVersion, Group, Guideline, Membership

# The only filters the membership list takes: ?user=<id> (or user__id__exact=) would list
# one account's pseudonyms in every group without the audited look-up below.
MEMBERSHIP_FILTERS = ("group", "role", "status")


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

    list_display = ("pseudonym", "group", "role", "status")
    list_filter = MEMBERSHIP_FILTERS
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

    def lookup_allowed(self, lookup, value, request=None):
        return lookup.split("__")[0] in MEMBERSHIP_FILTERS and super().lookup_allowed(
            lookup, value, request
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        membership = self.get_object(request, object_id)
        # Recorded only when the page is actually shown: a refused look reveals nothing.
        if (
            membership is not None
            and request.method == "GET"
            and self.has_view_or_change_permission(request, membership)
        ):
            services.membership_identity_view(
                actor=request.user, membership=membership, ip=request_ip(request)
            )
        extra_context = {
            **(extra_context or {}),
            "subtitle": (
                "Viewing this page shows the account behind a pseudonym. It is recorded in the "
                "access log and the member can see that it happened."
            ),
        }
        return super().change_view(request, object_id, form_url, extra_context)
