from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    """The admins' audit console: the log read with the people, groups and reveals it
    names, so it sits above every app (the log itself, ``audit``, sits below them)."""

    name = "console"
