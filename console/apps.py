from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    """The admins' audit console: the log read with the people, groups and reveals it
    names, so it sits above every app (the log itself, ``audit``, sits below them)."""

    name = "console"

    def ready(self) -> None:
        from accounts.facts import page_fact_register
        from console.exports import security_notices_of
        from console.selectors import unread_security_notices_fact
        from supportgroups.exports import export_part_register

        # The member's export (privacy, beside console in the layers) asks for this.
        export_part_register("security_notices", security_notices_of)
        # The security notices at the top of every page: read only when there are some.
        page_fact_register("unread_security_notices", unread_security_notices_fact)
