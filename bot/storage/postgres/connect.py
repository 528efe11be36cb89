"""Opening an asyncpg pool from a ``postgresql://`` URL, with failures in one plain sentence.

The password (in the URL's user part or its ``password=`` query option) never appears in a
message or a log: :func:`redacted` is the URL shown everywhere. ``pool_size=N`` in the query is
ours (the most connections the pool opens), taken out before asyncpg sees the rest.
"""

from __future__ import annotations

import getpass
import socket
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

import asyncpg
from asyncpg import Pool, Record

from bot.storage.base import StorageError

DEFAULT_POOL_SIZE = 10
"""Connections per process: enough for the job workers and interactions of one shard range."""
MAX_POOL_SIZE = 1000
CONNECT_TIMEOUT = 10.0
"""Seconds to reach the server and log in before giving up with a clear line."""
POOL_SIZE_OPTION = "pool_size"
SECRET_OPTIONS = ("password",)


@dataclass(frozen=True, slots=True)
class Target:
    """Where to connect: the URL for asyncpg, the same without secrets, and the pool size."""

    dsn: str = field(repr=False)  # holds the password: never shown
    location: str
    pool_size: int
    user: str
    database: str
    secrets: tuple[str, ...] = field(default=(), repr=False)  # to scrub from drivers' messages


def parse(url: str, pool_size: int | None = None) -> Target:
    """Read a ``postgresql://user:pass@host:port/db?…`` URL (``pool_size`` overrides the URL's)."""
    try:
        parts = urlsplit(url)
        options = parse_qsl(parts.query, keep_blank_values=True)
        if "," not in parts.netloc:  # several hosts (h1:5432,h2:5432): asyncpg checks them
            parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
    except ValueError:
        raise StorageError(
            "the PostgreSQL URL is malformed (expected postgresql://user:password@host:5432/db)"
        ) from None
    size_text = [value for name, value in options if name == POOL_SIZE_OPTION]
    kept = [(name, value) for name, value in options if name != POOL_SIZE_OPTION]
    if pool_size is None:
        pool_size = _pool_size(size_text[-1]) if size_text else DEFAULT_POOL_SIZE
    if not 1 <= pool_size <= MAX_POOL_SIZE:
        raise StorageError(f"pool_size must be between 1 and {MAX_POOL_SIZE} (got {pool_size})")
    dsn = parts._replace(query=urlencode(kept)).geturl()
    shown_netloc = parts.netloc.rpartition("@")[2]
    if parts.username:
        shown_netloc = f"{parts.username}@{shown_netloc}"
    shown_options = [(name, value) for name, value in kept if name not in SECRET_OPTIONS]
    location = parts._replace(netloc=shown_netloc, query=urlencode(shown_options)).geturl()
    user = unquote(parts.username or "") or getpass.getuser()  # asyncpg's defaults
    database = unquote(parts.path.lstrip("/")) or user
    raw = [parts.password or ""] + [v for n, v in kept if n in SECRET_OPTIONS]
    secrets = tuple(sorted({form for v in raw if v for form in (v, unquote(v))}, key=len))[::-1]
    return Target(dsn, location, pool_size, user, database, secrets)


def _pool_size(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise StorageError(f"pool_size must be a whole number (got {text!r})") from None


def redacted(url: str) -> str:
    """``url`` as it may be shown: no password, no ``pool_size``; a malformed URL as a hint."""
    try:
        return parse(url).location
    except StorageError:
        return "postgresql://(malformed URL)"


async def create_pool(target: Target) -> Pool[Record]:
    """An open pool on ``target``, or :class:`StorageError` saying in one line why not."""
    try:
        pool = await asyncpg.create_pool(
            target.dsn,
            min_size=1,
            max_size=target.pool_size,
            timeout=CONNECT_TIMEOUT,
        )
    except BaseException as failed:
        if not isinstance(failed, Exception):
            raise
        raise StorageError(why(target, failed)) from None
    return pool


def why(target: Target, failed: BaseException) -> str:
    """The one line that explains a failure to connect to ``target`` (never its password)."""
    where = f"the PostgreSQL server of {target.location}"
    if isinstance(failed, asyncpg.InvalidCatalogNameError):
        return (
            f"the database {target.database!r} does not exist on {where}:"
            f" create it (createdb {target.database}) or fix PIKABOT_DATABASE_URL"
        )
    if isinstance(
        failed, asyncpg.InvalidPasswordError | asyncpg.InvalidAuthorizationSpecificationError
    ):
        return (
            f"{where} refused user {target.user!r}: wrong password or no such role"
            " (check the user and password in PIKABOT_DATABASE_URL)"
        )
    if isinstance(failed, socket.gaierror):
        return f"cannot reach {where}: its host name does not resolve"
    if isinstance(failed, ConnectionRefusedError):
        return f"cannot reach {where}: connection refused (is PostgreSQL running there?)"
    if isinstance(failed, TimeoutError):
        return f"cannot reach {where}: no answer within {CONNECT_TIMEOUT:.0f} s"
    if isinstance(failed, OSError):
        return f"cannot reach {where}: {failed.strerror or type(failed).__name__}"
    if isinstance(failed, asyncpg.PostgresError):
        return f"{where} refused the connection: {first_line(str(failed), target)}"
    if isinstance(failed, ValueError):
        return (
            "the PostgreSQL URL is not valid (expected postgresql://user:password@host:5432/db):"
            f" {first_line(str(failed), target)}"
        )
    return f"cannot open {target.location}: {type(failed).__name__}"


def first_line(text: str, target: Target) -> str:
    """The first line of a driver's message, with anything that looks like the URL removed."""
    line = text.strip().splitlines()[0] if text.strip() else "no reason given"
    line = line.replace(target.dsn, target.location)
    for secret in target.secrets:  # longest first, so no part of one is left showing
        line = line.replace(secret, "***")
    return line
