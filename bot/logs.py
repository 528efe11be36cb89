"""structlog, configured once: console in a terminal, JSON lines otherwise, secrets redacted.

The standard library's records (discord.py's, aiohttp's) go through the same processors, so
the operator reads one stream in one format.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any

import structlog

from bot.config import LogFormat
from bot.redact import redact_text


class RedactSecrets:
    """A processor that masks known secrets and signed URL queries in every string value."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __call__(
        self, _logger: Any, _name: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        for key, value in list(event.items()):
            if isinstance(value, str):
                event[key] = redact_text(value, self.secrets)
            elif isinstance(value, BaseException):
                event[key] = redact_text(repr(value), self.secrets)
        return event


class CurrentStderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at each record, not the one at set-up.

    ``pikabot generate``'s live status line (rich) swaps ``sys.stderr`` for a proxy that prints
    above the line; a handler bound to the original stream would glue log lines onto it.
    """

    @property
    def stream(self) -> Any:
        """The current ``sys.stderr``."""
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        """The stream is always the current ``sys.stderr``; setting it is ignored."""


def configure_logging(
    *, level: str = "INFO", fmt: LogFormat = LogFormat.AUTO, secrets: Iterable[str] = ()
) -> None:
    """Set up structlog and route the standard library's logging through it."""
    use_json = fmt is LogFormat.JSON or (fmt is LogFormat.AUTO and not sys.stderr.isatty())
    redact = RedactSecrets(secrets)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any
    if use_json:
        renderer = structlog.processors.JSONRenderer()
        final: list[Any] = [structlog.processors.format_exc_info, redact, renderer]
    else:
        # Tracebacks are rendered to text before redaction here too: a secret in an
        # exception's message must not reach the terminal either.
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
        final = [structlog.processors.format_exc_info, redact, renderer]

    structlog.configure(
        processors=[
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *final],
    )
    handler = CurrentStderrHandler()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # discord.py's gateway chatter is DEBUG-worthy; keep its INFO lines (connect, resume).
    logging.getLogger("discord.gateway").setLevel(max(logging.INFO, root.level))
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def debug_enabled() -> bool:
    """True when ``PIKABOT_LOG_LEVEL=DEBUG`` is in effect (tracebacks are logged)."""
    return logging.getLogger().isEnabledFor(logging.DEBUG)
