"""Sends a person with an unfinished place in a group to the step they skipped."""

from django.contrib import messages
from django.shortcuts import redirect

from groups.selectors import PlaceNotTaken

WHY = {
    "take_place": (
        "Before you see anything private in {group}, choose your name in it and sign its "
        "confidentiality agreement, as every member does."
    ),
    "sign": (
        "Before you see anything private in {group}, please sign its current "
        "confidentiality agreement, as every member does."
    ),
}


class PlaceNotTakenMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, PlaceNotTaken):
            return None
        group = exception.membership.group
        messages.info(request, WHY[exception.step].format(group=group.name))
        return redirect(f"groups:{exception.step}", slug=group.slug)
