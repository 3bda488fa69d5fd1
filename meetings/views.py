from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from groups.selectors import facilitation_for_user_or_404
from meetings import selectors, services
from meetings.e2ee import E2EE_ROOM_SENTENCE, PLAIN_ROOM_SENTENCE
from meetings.forms import MeetingForm
from meetings.models import Meeting


@login_required
def room(request: HttpRequest, meeting_id: int) -> HttpResponse:
    # The same question as the room's socket asks (meetings/consumers.py).
    entry = selectors.room_entry(request.user, meeting_id)
    if entry.refusal == "not_a_member":
        raise Http404
    meeting, membership, refusal = entry.meeting, entry.membership, entry.refusal
    if refusal == "agreement_required":
        messages.info(request, "Please sign the group's current agreement to join its meetings.")
        return redirect(
            "groups:sign" if membership.pseudonym else "groups:take_place", slug=meeting.group.slug
        )
    group = meeting.group
    # The room opens to this person now: the meeting takes the group's E2EE setting.
    e2ee = services.meeting_fix_e2ee(meeting=meeting) if refusal is None else meeting.is_e2ee
    return render(
        request,
        "meetings/room.html" if refusal is None else "meetings/not_open.html",
        {
            "e2ee": e2ee,
            "e2ee_sentence": E2EE_ROOM_SENTENCE if e2ee else PLAIN_ROOM_SENTENCE,
            "meeting": meeting,
            "membership": membership,
            "group": group,
            "guidelines": group.guidelines.all(),
            "refusal": refusal,
            "refusal_text": services.refusal_text(refusal, membership) if refusal else "",
            "has_ended": meeting.has_ended(),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def schedule(request: HttpRequest, slug: str) -> HttpResponse:
    membership = facilitation_for_user_or_404(request.user, slug)
    group = membership.group
    form = MeetingForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            created = services.meeting_schedule(
                group=group,
                actor=request.user,
                title=data["title"],
                starts_at=data["starts_at"],
                ends_at=data["ends_at"],
                recurrence=data["recurrence"],
                occurrences=data["occurrences"],
            )
        except services.RoomError as error:
            form.add_error(None, error.message)
        else:
            messages.success(
                request, f"{len(created)} meeting{'s' if len(created) > 1 else ''} scheduled."
            )
            return redirect("meetings:schedule", slug=slug)
    now = timezone.now()
    meetings = Meeting.objects.filter(group=group).order_by("starts_at")
    return render(
        request,
        "meetings/schedule.html",
        {
            "group": group,
            "form": form,
            "upcoming": [m for m in meetings if not m.has_ended(now)],
            "past": sorted(
                (m for m in meetings.prefetch_related("attendance") if m.has_ended(now)),
                key=lambda m: m.starts_at,
                reverse=True,
            )[:20],
        },
    )


@login_required
@require_POST
def open_room(request: HttpRequest, meeting_id: int) -> HttpResponse:
    meeting, _ = selectors.meeting_for_facilitator_or_404(request.user, meeting_id)
    try:
        services.meeting_open(meeting=meeting, actor=request.user)
    except services.RoomError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, "The room is open.")
    return redirect("meetings:schedule", slug=meeting.group.slug)


@login_required
@require_POST
def close_room(request: HttpRequest, meeting_id: int) -> HttpResponse:
    meeting, _ = selectors.meeting_for_facilitator_or_404(request.user, meeting_id)
    try:
        services.meeting_close(meeting=meeting, actor=request.user)
    except services.RoomError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, "The room is closed. Everyone in it has been told.")
    return redirect("meetings:schedule", slug=meeting.group.slug)


@login_required
def attendance(request: HttpRequest, meeting_id: int) -> HttpResponse:
    meeting, _ = selectors.meeting_for_facilitator_or_404(request.user, meeting_id)
    return render(
        request,
        "meetings/attendance.html",
        {
            "meeting": meeting,
            "group": meeting.group,
            "attendance": meeting.attendance.select_related("membership").order_by(
                "first_joined_at"
            ),
        },
    )
