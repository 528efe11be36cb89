"""Pika's familiar prompt flags (``-ar 9:16 -seed 42 -neg "blurry" -dur 10 -res 1080p``).

Members coming from Pika's own Discord type these into the prompt; we understand them, take
them out of the prompt, and let explicit command options win over them.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

FLAG_NAMES = {
    "ar": "aspect",
    "aspect": "aspect",
    "seed": "seed",
    "neg": "negative_prompt",
    "negative": "negative_prompt",
    "dur": "duration",
    "duration": "duration",
    "res": "resolution",
    "resolution": "resolution",
    "model": "model",
}
_FLAG = re.compile(
    r"(?<!\S)--?(" + "|".join(sorted(FLAG_NAMES, key=len, reverse=True)) + r")(?=\s|$)"
)


@dataclass(frozen=True, slots=True)
class ParsedPrompt:
    """The prompt without its flags, and the flags' raw values by option name."""

    prompt: str
    flags: dict[str, str] = field(default_factory=dict)
    problems: tuple[str, ...] = ()


def parse_prompt_flags(text: str) -> ParsedPrompt:
    """Split flags out of ``text``. A flag with no value is reported, not guessed."""
    matches = list(_FLAG.finditer(text))
    if not matches:
        return ParsedPrompt(prompt=" ".join(text.split()))
    kept: list[str] = [text[: matches[0].start()]]
    flags: dict[str, str] = {}
    problems: list[str] = []
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        tail = text[match.end() : end]
        option = FLAG_NAMES[match.group(1).lower()]
        value, rest = _take_value(tail)
        if value is None:
            problems.append(f"`-{match.group(1)}` needs a value")
        else:
            flags[option] = value
        kept.append(rest)
    return ParsedPrompt(
        prompt=" ".join(" ".join(kept).split()), flags=flags, problems=tuple(problems)
    )


def _take_value(tail: str) -> tuple[str | None, str]:
    """The flag's value (one word, or a quoted phrase) and what follows it."""
    stripped = tail.lstrip()
    if not stripped:
        return None, ""
    if stripped[0] in "\"'“”‘’":
        quote = {"“": "”", "‘": "’"}.get(stripped[0], stripped[0])
        closing = stripped.find(quote, 1)
        if closing == -1:
            return stripped[1:].strip() or None, ""
        return stripped[1:closing].strip() or None, stripped[closing + 1 :]
    try:
        word = shlex.split(stripped.split(None, 1)[0])[0]
    except (ValueError, IndexError):
        word = stripped.split(None, 1)[0]
    remainder = stripped.split(None, 1)
    return word, remainder[1] if len(remainder) > 1 else ""
