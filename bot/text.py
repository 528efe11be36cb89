"""What a member typed, as the text a provider should see.

Discord and terminals pass through characters nobody can see: zero-width spaces and joiners
(U+200B, U+200D), byte-order marks (U+FEFF), control characters. A prompt made only of them
looks empty to the member but is not empty to a length check, and the provider would bill a
clip for it. Text is normalised (NFKC, so full-width ``－ａｒ`` is ``-ar``), control, format
and surrogate characters are dropped, and whitespace runs become one space.
"""

from __future__ import annotations

import unicodedata

_DROPPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs"})
_BLANK_LETTERS = frozenset({"\u115f", "\u1160", "\u3164", "\uffa0", "\u2800"})
"""Hangul fillers and the Braille blank: letters (or a symbol) by category that show nothing."""


def clean_text(text: str) -> str:
    """``text`` normalised (NFKC), without control or format characters, spaces collapsed."""
    kept = []
    for char in unicodedata.normalize("NFKC", text):
        if char.isspace() or char in _BLANK_LETTERS:
            kept.append(" ")
        elif unicodedata.category(char) not in _DROPPED_CATEGORIES:
            kept.append(char)
    return " ".join("".join(kept).split())


def is_visible(text: str) -> bool:
    """True if ``text`` has something to read: a letter, digit, punctuation mark or symbol
    (combining marks alone, spaces and invisible characters do not count)."""
    return any(
        unicodedata.category(char)[0] in "LNPS" and char not in _BLANK_LETTERS for char in text
    )
