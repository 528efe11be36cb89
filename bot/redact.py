"""Keeping secrets out of logs, errors and messages."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

_URL = re.compile(r"https?://[^\s\"'<>]+")
_SIGNATURE_PARAMS = re.compile(
    r"(?i)\b(x-amz-[a-z-]+|signature|sig|token|key|hm|ex|is|expires|policy|key-pair-id)="
)


def safe_url(url: str) -> str:
    """``url`` without its query and fragment, where signed URLs keep their signature."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<url>"
    if not parts.query and not parts.fragment:
        return url
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")) + "?<redacted>"


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with known secrets masked and signed URLs' queries removed."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    if "?" in text and _SIGNATURE_PARAMS.search(text):
        text = _URL.sub(lambda m: safe_url(m.group(0)), text)
    return text


def without_password(url: str) -> str:
    """A database URL with its password masked (``postgresql://bot:***@host/db``)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<url>"
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit((parts.scheme, f"{user}:***@{host}", parts.path, parts.query, ""))
