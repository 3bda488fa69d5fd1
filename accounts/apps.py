from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"

    def ready(self) -> None:
        # The audit log, below accounts, emails admins through these (models load first).
        from accounts import alerts
        from audit.services import security_alerts_use

        security_alerts_use(alerts)
