"""Pseudonym rules: what a name inside a group may look like, and when two are "the same".

Two pseudonyms are the same if they differ only by case, accents, spacing/punctuation or
characters that look alike (Cyrillic "а" for Latin "a", "0" for "o", "rn" for "m"...).
That folded form (the *key*) is unique within a group.
"""

import re
import unicodedata

from django.core.exceptions import ValidationError

MIN_LENGTH = 3
MAX_LENGTH = 30
_SEPARATORS = " -_.'’"

# Look-alikes folded to one Latin letter. Not all of Unicode's confusables, but the ones
# that matter for the letters, digits and scripts a pseudonym may use.
_CONFUSABLES = str.maketrans(
    {
        # Cyrillic
        "а": "a",
        "в": "b",
        "е": "e",
        "ё": "e",
        "к": "k",
        "м": "m",
        "н": "h",
        "о": "o",
        "р": "p",
        "с": "c",
        "т": "t",
        "у": "y",
        "х": "x",
        "ѕ": "s",
        "і": "l",
        "ї": "l",
        "ј": "j",
        "ԁ": "d",
        "ԛ": "q",
        "ԝ": "w",
        "һ": "h",
        "ӏ": "l",
        # Greek
        "α": "a",
        "β": "b",
        "ε": "e",
        "η": "n",
        "ι": "l",
        "κ": "k",
        "ν": "v",
        "ο": "o",
        "ρ": "p",
        "τ": "t",
        "υ": "u",
        "χ": "x",
        "ω": "w",
        "μ": "u",
        # Latin letters that look like other Latin letters
        "ı": "l",
        "ɩ": "l",
        "ȷ": "j",
        "ɑ": "a",
        "ɡ": "g",
        # Digits and Latin look-alikes
        "0": "o",
        "1": "l",
        "i": "l",
        "|": "l",
        "3": "e",
        "4": "a",
        "5": "s",
        "7": "t",
        "8": "b",
        "9": "g",
        "$": "s",
        "@": "a",
    }
)
_MULTI = (("rn", "m"), ("vv", "w"), ("cl", "d"))


def pseudonym_key(value: str) -> str:
    """The folded form used for uniqueness and for the "contains your handle" rule."""
    text = unicodedata.normalize("NFKD", value)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    text = "".join(ch for ch in text if ch not in _SEPARATORS)
    text = text.translate(_CONFUSABLES)
    for many, one in _MULTI:
        text = text.replace(many, one)
    return text


def _script(ch: str) -> str:
    try:
        return unicodedata.name(ch).split(" ")[0]
    except ValueError:
        return "UNKNOWN"


_ALLOWED_SHAPE = re.compile(r"^[^\W_](?:[\w \-.'’]*[^\W_])?$")


def clean_pseudonym(value: str, *, login_handle: str) -> str:
    """Return the tidied pseudonym, or raise ValidationError saying what to change."""
    value = " ".join(unicodedata.normalize("NFC", value).split())
    if len(value) < MIN_LENGTH:
        raise ValidationError(f"Please use at least {MIN_LENGTH} characters.")
    if len(value) > MAX_LENGTH:
        raise ValidationError(f"Please use at most {MAX_LENGTH} characters.")
    if not _ALLOWED_SHAPE.match(value):
        raise ValidationError(
            "Use letters, numbers, spaces, hyphens, dots or apostrophes, "
            "starting and ending with a letter or number."
        )
    scripts = {_script(ch) for ch in value if ch.isalpha()}
    if len(scripts) > 1:
        raise ValidationError("Please use letters from one alphabet only.")
    if not any(ch.isalpha() for ch in value):
        raise ValidationError("Please include at least one letter.")
    handle_key = pseudonym_key(login_handle)
    if handle_key and handle_key in pseudonym_key(value):
        raise ValidationError(
            "Your group name can't contain your login handle: the handle stays private."
        )
    return value
