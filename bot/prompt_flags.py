"""Pika's familiar prompt flags (``-ar 9:16 -seed 42 -neg "blurry" -dur 10 -res 1080p``).

Members coming from Pika's own Discord type these into the prompt; we understand them, take
them out of the prompt, and let explicit command options win over them.

Pika's Discord bot also had ``-fps``, ``-motion``, ``-gs`` and ``-camera``; the Pika 2.x APIs
that the gateways sell have no such fields, so those flags are taken out and reported as
ignored rather than sent to the model as words. Any other ``-word`` is left in the prompt
(it may be meant as text) and reported as unknown.
"""

from __future__ import annotations

import re
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
SHORT_FLAGS = ("ar", "seed", "neg", "dur", "res", "model")
"""The names members are told about (each has a long form too: ``-aspect``, ``-negative``...)."""
IGNORED_FLAGS = {
    "fps": "frame rate",
    "motion": "motion strength",
    "gs": "guidance scale",
    "camera": "camera control",
}
"""Flags of Pika's own Discord bot with no counterpart in the Pika 2.x APIs: what each set."""

_FLAG = re.compile(r"(?<!\S)--?([A-Za-z][\w-]*)(?=\s|$)")
_WORD = re.compile(r"\S+")
_QUOTES = {'"': '"', "'": "'", "“": "”", "”": "”", "‘": "’", "’": "’"}
_CAMERA_MOVES = frozenset({"zoom", "pan", "rotate", "tilt"})
_CAMERA_DIRECTIONS = frozenset(
    {"in", "out", "up", "down", "left", "right"}
    | {"clockwise", "counterclockwise", "anticlockwise", "cw", "ccw", "acw"}
)


@dataclass(frozen=True, slots=True)
class ParsedPrompt:
    """The prompt without its flags, the flags' raw values by option name, and what was
    ignored (Pika-only flags as typed) or left alone (unknown flags)."""

    prompt: str
    flags: dict[str, str] = field(default_factory=dict)
    problems: tuple[str, ...] = ()
    ignored: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()


def parse_prompt_flags(text: str) -> ParsedPrompt:
    """Split flags out of ``text``. A flag with no value is reported, not guessed."""
    kept: list[str] = []
    flags: dict[str, str] = {}
    problems: list[str] = []
    ignored: list[str] = []
    unknown: list[str] = []
    position = 0
    while (match := _FLAG.search(text, position)) is not None:
        kept.append(text[position : match.start()])
        typed, name = match.group(0), match.group(1).lower()
        position = match.end()
        if name in FLAG_NAMES:
            value, position = _take_value(text, position)
            if value is None:
                problems.append(f"`-{match.group(1)}` needs a value")
            else:
                flags[FLAG_NAMES[name]] = value
        elif name in IGNORED_FLAGS:
            take = _take_camera if name == "camera" else _take_value
            value, position = take(text, position)
            ignored.append(f"{typed} {value}" if value is not None else typed)
        else:
            unknown.append(typed)
            kept.append(typed)
    kept.append(text[position:])
    return ParsedPrompt(
        prompt=" ".join(" ".join(kept).split()),
        flags=flags,
        problems=tuple(problems),
        ignored=tuple(ignored),
        unknown=tuple(unknown),
    )


def _next_word(text: str, start: int) -> re.Match[str] | None:
    """The next word from ``start``, unless there is none or it is itself a flag."""
    word = _WORD.search(text, start)
    if word is None or _FLAG.match(text, word.start()):
        return None
    return word


def _take_value(text: str, start: int) -> tuple[str | None, int]:
    """The flag's value (one word, or a quoted phrase) and where the text after it starts."""
    word = _next_word(text, start)
    if word is None:
        return None, start
    opening = text[word.start()]
    if opening in _QUOTES:
        closing = text.find(_QUOTES[opening], word.start() + 1)
        end = len(text) if closing == -1 else closing
        return text[word.start() + 1 : end].strip() or None, min(end + 1, len(text))
    return word.group(0), word.end()


def _take_camera(text: str, start: int) -> tuple[str | None, int]:
    """``-camera``'s value: a move and its directions (``zoom in``, ``pan up left``)."""
    value, end = _take_value(text, start)
    if value is None or value.lower() not in _CAMERA_MOVES:
        return value, end
    words = [value]
    while len(words) < 3 and (word := _next_word(text, end)) is not None:
        if word.group(0).lower() not in _CAMERA_DIRECTIONS:
            break
        words.append(word.group(0))
        end = word.end()
    return " ".join(words), end
