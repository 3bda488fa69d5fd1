"""Checking answers against the questions they answer."""

from typing import Any

from screening.models import ANSWER_LIMITS, CHOICE_KINDS, Question, QuestionKind


class AnswerErrors(Exception):
    """What to fix, by question id (and form-wide problems under None)."""

    def __init__(self, errors: dict[int | None, str]):
        super().__init__("Some answers need attention.")
        self.errors = errors


def clean_answers(
    questions: list[Question], raw: dict[str, Any], *, require_all: bool
) -> dict[str, Any]:
    """Answers keyed by question id as a string. ``raw`` maps question ids (strings) to a
    string, or a list of strings for multiple choice."""
    by_id = {str(q.pk): q for q in questions}
    errors: dict[int | None, str] = {}
    if set(raw) - set(by_id):
        errors[None] = (
            "This form didn't match the current questions (it may have been changed). "
            "Please check your answers and send it again."
        )
    cleaned: dict[str, Any] = {}
    for key, question in by_id.items():
        value = raw.get(key)
        try:
            value = _clean_one(question, value)
        except ValueError as error:
            errors[question.pk] = str(error)
            continue
        if value in (None, "", []):
            if require_all and question.required:
                errors[question.pk] = "This question needs an answer."
            continue
        cleaned[key] = value
    if errors:
        raise AnswerErrors(errors)
    return cleaned


def _clean_one(question: Question, value: Any) -> Any:
    if question.kind == QuestionKind.MULTIPLE_CHOICE:
        values = value if isinstance(value, list) else ([] if value in (None, "") else [value])
        if any(not isinstance(v, str) or v not in question.choices for v in values):
            raise ValueError("Please choose from the options given.")
        return [c for c in question.choices if c in values]
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("Please give a single answer.")
    value = value.strip()
    if question.kind in ANSWER_LIMITS:
        limit = ANSWER_LIMITS[question.kind]
        if len(value) > limit:
            raise ValueError(
                f"Please keep this answer under {limit} characters (it has {len(value)})."
            )
        return value
    if question.kind == QuestionKind.YES_NO:
        if value not in ("", "yes", "no"):
            raise ValueError("Please answer yes or no.")
        return value
    if question.kind in CHOICE_KINDS:
        if value and value not in question.choices:
            raise ValueError("Please choose one of the options given.")
        return value
    raise ValueError("Unknown kind of question.")
