from django import template

from meetings.selectors import upcoming_meetings

register = template.Library()


@register.inclusion_tag("meetings/_upcoming.html")
def upcoming_meetings_for(membership, limit=5):  # noqa: ANN001
    return {"meetings": upcoming_meetings(membership.group, limit=limit), "membership": membership}
