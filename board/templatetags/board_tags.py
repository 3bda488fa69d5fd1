"""The board's line on "My groups" (groups/mine.html), without the groups app knowing
the board: the template asks this filter, which counts every group at once."""

from django import template

from board.selectors import unread_counts

register = template.Library()


@register.filter
def with_board_unread(memberships):  # noqa: ANN001, ANN201
    """The person's places, each with ``board_unread``: how many posts on that group's
    board they have not read, or None where the board is closed to them now. One query
    for all the groups, whatever their number and size."""
    places = list(memberships)
    counts = unread_counts(places)
    for place in places:
        place.board_unread = counts.get(place.pk)
    return places
