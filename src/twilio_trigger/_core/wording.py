"""Small helpers for the package's messages, so that they read as English:
``an int``, ``a str``, ``1 parameter``, ``3 parameters``."""

from __future__ import annotations

__all__ = ["a_or_an", "counted"]

#: Letters whose spoken name starts with a vowel sound: "an HTTPError", "an SMS".
_VOWEL_LETTERS = frozenset("AEFHILMNORSX")
#: Words starting with a "u" said as "you": "a unicode", "a user".
_U_AS_YOU = ("uni", "use", "usa", "usu", "uti", "uu", "ure", "uri")


def a_or_an(word: str) -> str:
    """*word* after its indefinite article: ``an int``, ``a str``, ``an HTTPError``,
    ``a URL``, ``an AssignmentEvent``.

    Made for type and class names: a name that starts with two capitals is an
    abbreviation, read letter by letter.
    """
    if len(word) > 1 and word[:2].isupper():
        article = "an" if word[0] in _VOWEL_LETTERS else "a"
    else:
        lower = word.lower()
        vowel = lower[:1] in ("a", "e", "i", "o") or (
            lower[:1] == "u" and not lower.startswith(_U_AS_YOU)
        )
        article = "an" if vowel else "a"
    return f"{article} {word}"


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """*count* and *noun*, the noun plural unless the count is one: ``1 parameter``,
    ``0 parameters``, ``2 shared keys``; *plural* when it is not the noun plus ``s``."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"
