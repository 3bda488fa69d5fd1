from django.contrib.auth import logout
from django.db import transaction
from django.http import HttpRequest

from audit.events import Action
from audit.services import record_event, request_ip
from supportgroups.realtime import close_user_sockets_on_commit


@transaction.atomic
def session_leave_quickly(*, request: HttpRequest) -> None:
    """End this session at once (the "Leave quickly" control) and close its sockets."""
    user = request.user
    if user.is_authenticated:
        record_event(action=Action.QUICK_EXIT, actor=user, subject=user, ip=request_ip(request))
        close_user_sockets_on_commit(user.pk, reason="signed_out")
    logout(request)
