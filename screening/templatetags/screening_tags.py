from django import template

register = template.Library()


@register.filter
def as_answer(value) -> str:  # noqa: ANN001
    """An answer as text: several choices joined, yes/no spelt out."""
    if isinstance(value, list):
        return ", ".join(value)
    return {"yes": "Yes", "no": "No"}.get(value, value or "")


@register.filter
def age(delta) -> str:  # noqa: ANN001
    """How long someone has waited, in words a busy facilitator reads at a glance."""
    days = delta.days
    if days >= 1:
        return f"{days} day{'s' if days != 1 else ''}"
    hours = delta.seconds // 3600
    if hours >= 1:
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return "under an hour"
