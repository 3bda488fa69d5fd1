from django.apps import AppConfig


class SupportgroupsConfig(AppConfig):
    name = "supportgroups"
    verbose_name = "Support groups platform"

    def ready(self) -> None:
        from supportgroups import checks  # noqa: F401  (registers the system checks)
