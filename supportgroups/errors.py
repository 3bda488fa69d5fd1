"""The project's one service error, and the pages shown for 404 and 500."""

from django.shortcuts import render


class ServiceError(Exception):
    """A well-formed request that a service refuses now.

    ``code`` is stable (socket ``error`` frames and tests read it); ``message`` is for the
    person, in words. ``field`` names the form field the message belongs to, if any. Each
    app subclasses it (AccountError, GroupError, ScreeningError, RoomError,
    ModerationError) so a caller catches exactly the refusals of the services it calls.
    """

    def __init__(self, code: str, message: str, *, field: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return self.message


def not_found(request, exception=None):
    return render(request, "errors/404.html", status=404)


def server_error(request):
    return render(request, "errors/500.html", status=500)
