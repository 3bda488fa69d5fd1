from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit log"

    def ready(self) -> None:
        from audit.database import sync_after_migrate

        # Database setup, not business logic: runs as the role that migrates (the owner).
        post_migrate.connect(sync_after_migrate, sender=self, dispatch_uid="audit-roles")
