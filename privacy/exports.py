"""Everything the app stores about one person, from every app, decrypted (the export).

Facilitators' private reviewer notes are not included: they belong to the group's
screening, and the applicant is told that such notes may exist.
"""

from typing import Any

from accounts.models import User
from board.models import ThreadRead
from board.selectors import posts_of_user
from groups.models import Membership
from meetings.models import Attendance, Device, Message
from moderation.models import ModerationAction, Report, SafetyFlag
from privacy.models import ConsentRequest
from screening.models import Application

# What the export says of messages in end-to-end encrypted meetings (issue 19, point 8).
E2EE_MESSAGES_NOTE = (
    "Messages you wrote in end-to-end encrypted meetings are not held by this site in "
    "readable form: they were encrypted in your browser for the people in the meeting, and "
    "the server stores only that encrypted form. So they are listed here without their text."
)


def _iso(value) -> str | None:  # noqa: ANN001
    return value.isoformat() if value else None


def user_data_from_apps(user: User) -> dict[str, Any]:
    memberships = Membership.objects.filter(user=user).select_related("group")
    applications = Application.objects.filter(applicant=user).select_related(
        "group", "questionnaire"
    )
    return {
        "memberships": [
            {
                "group": m.group.name,
                "pseudonym": m.pseudonym,
                "role": m.role,
                "status": m.status,
                "joined": _iso(m.joined_at),
                "muted_until": _iso(m.muted_until),
                "suspended_until": _iso(m.suspended_until),
                "signatures": [
                    {
                        "agreement_version": s.agreement.version,
                        "signed_at": _iso(s.signed_at),
                        "typed_name": s.typed_name,
                    }
                    for s in m.signatures.select_related("agreement")
                ],
            }
            for m in memberships
        ],
        "applications": [
            {
                "group": a.group.name,
                "status": a.status,
                "started": _iso(a.created_at),
                "sent": _iso(a.submitted_at),
                "decided": _iso(a.decided_at),
                "answers": {
                    q.text: (a.answers or {}).get(str(q.pk))
                    for q in a.questionnaire.questions.all()
                },
                "question_from_facilitators": a.info_request,
                "your_answer": a.info_response,
                "message_to_you": a.message_to_applicant,
            }
            for a in applications
        ],
        "about_end_to_end_encrypted_messages": E2EE_MESSAGES_NOTE,
        "messages": [
            {
                "group": m.meeting.group.name,
                "meeting": m.meeting.title,
                "seq": m.seq,
                "sent_at": _iso(m.created_at),
                "body": m.body,
                "end_to_end_encrypted": m.epoch is not None,
                "hidden_by_a_facilitator": m.hidden_at is not None,
            }
            for m in Message.objects.filter(author__user=user).select_related("meeting__group")
        ],
        # The public keys the person's browsers made for encrypted meetings (never a
        # private key: those stay in the browser).
        "meeting_device_keys": [
            {
                "group": d.membership.group.name,
                "made": _iso(d.created_at),
                "safety_code": d.safety_code,
                "in_use": d.is_live,
            }
            for d in Device.objects.filter(membership__user=user).select_related(
                "membership__group"
            )
        ],
        # On the groups' boards: each post of the person's, with its text, or why the
        # text is gone (the words its thread's page shows in its place).
        "board_posts": [
            {
                "group": p.thread.group.name,
                "thread": p.thread.number,
                "thread_title": p.thread.title if p.number == 1 else None,
                "post": p.number,
                "written_at": _iso(p.created_at),
                "body": p.body,
                "text_removed": p.removed_label,
                "hidden_by_a_facilitator": p.hidden_at is not None,
            }
            for p in posts_of_user(user)
        ],
        # How far you have read each thread (for the unread counts on "My groups").
        "board_threads_read": [
            {
                "group": r.thread.group.name,
                "thread": r.thread.number,
                "read_up_to_post": r.read_up_to,
            }
            for r in ThreadRead.objects.filter(membership__user=user)
            .select_related("thread__group")
            .order_by("thread__group__name", "thread__number")
        ],
        "meetings_attended": [
            {
                "group": a.meeting.group.name,
                "meeting": a.meeting.title,
                "joined": _iso(a.first_joined_at),
            }
            for a in Attendance.objects.filter(membership__user=user).select_related(
                "meeting__group"
            )
        ],
        "moderation_steps_about_you": [
            {
                "group": a.group.name,
                "step": a.kind,
                "rule": a.guideline_number,
                "reason": a.reason,
                "until": _iso(a.until),
                "when": _iso(a.created_at),
            }
            for a in ModerationAction.objects.filter(membership__user=user).select_related("group")
        ],
        "reports_you_made": [
            {
                "group": r.group.name,
                "rule": r.guideline_number,
                "note": r.note,
                "status": r.status,
                "when": _iso(r.created_at),
            }
            for r in Report.objects.filter(reporter__user=user).select_related("group")
        ],
        "requests_to_share_your_information": [
            {
                "group": c.group.name,
                "asked": _iso(c.created_at),
                "items": c.item_labels(),
                "recipient": c.recipient,
                "purpose": c.purpose,
                "summary": c.summary,
                "until": c.valid_until.isoformat(),
                "status": c.status,
                "answered": _iso(c.decided_at),
                "withdrawn": _iso(c.withdrawn_at),
            }
            for c in ConsentRequest.objects.filter(membership__user=user).select_related("group")
        ],
        "safety_concerns_you_raised": [
            {"group": f.group.name, "note": f.note, "status": f.status, "when": _iso(f.created_at)}
            for f in SafetyFlag.objects.filter(raised_by__user=user).select_related("group")
        ],
    }
