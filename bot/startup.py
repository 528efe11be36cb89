"""Start-up failures as one sentence for the operator: what failed, and the setting to fix.

The CLI prints :func:`describe` of whatever stopped a command; nothing here names an
exception class where a plain sentence can say what happened.
"""

from __future__ import annotations

import aiohttp

from bot.reach import unreachable_reason
from bot.storage.base import StorageError
from bot.storage.sqlite.connection import SqliteUnavailable
from bot.storage.sqlite.lockfile import DatabaseInUse

DEBUG_HINT = "PIKABOT_LOG_LEVEL=DEBUG logs the traceback"
INVALID_SHARD = 4010
SHARDING_REQUIRED = 4011
"""Gateway close codes: a shard id out of range; too few shards for the bot's guilds."""


class StartupFailure(Exception):
    """A failure already put into words for the operator (``str()`` is the sentence)."""


def discord_unreachable(host: str, exc: BaseException) -> StartupFailure:
    """Discord's API could not be reached at all (DNS, firewall, no network)."""
    return StartupFailure(
        f"cannot reach Discord at {host}: {unreachable_reason(exc)}."
        f" Check this machine's network, DNS and firewall (the bot needs HTTPS to {host})."
    )


def describe(exc: BaseException, *, debug: bool = False) -> str:
    """The one line the CLI prints for ``exc``; unknown failures point at the traceback."""
    if isinstance(exc, StartupFailure):
        return str(exc)
    if isinstance(exc, SqliteUnavailable):
        return (
            f"cannot open the database {exc.path} (PIKABOT_DATABASE): {exc.reason}."
            " Set PIKABOT_DATABASE to a writable file, or make its folder writable by the"
            " bot's user (in Docker: mount a volume at /app/data)."
        )
    if isinstance(exc, DatabaseInUse):
        return f"not started: {exc}."
    if isinstance(exc, StorageError):
        return f"cannot use the database (PIKABOT_DATABASE_URL): {exc}"
    name = type(exc).__name__
    if name == "LoginFailure":
        return "Discord refused DISCORD_TOKEN: copy the bot token again from the developer portal."
    if name == "PrivilegedIntentsRequired":
        return "Discord refused a privileged intent; pikabot needs none, check the bot's settings."
    if name == "ConnectionClosed" and getattr(exc, "code", None) == SHARDING_REQUIRED:
        return (
            "Discord requires more shards for this many servers: raise PIKABOT_SHARD_COUNT"
            " (or unset it and PIKABOT_SHARD_IDS to use Discord's recommendation)."
        )
    if name == "ConnectionClosed" and getattr(exc, "code", None) == INVALID_SHARD:
        return (
            "Discord refused the shard settings: check PIKABOT_SHARD_COUNT and PIKABOT_SHARD_IDS."
        )
    if isinstance(exc, aiohttp.ClientError | OSError | TimeoutError):
        text = f"a network connection failed: {unreachable_reason(exc)}"
    else:
        detail = " ".join(str(exc).split())[:200]
        text = f"could not start: {name}" + (f": {detail}" if detail else "")
    return text if debug else f"{text} ({DEBUG_HINT})"
