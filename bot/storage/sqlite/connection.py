"""One aiosqlite connection: opened with the bot's pragmas, one thread trip per statement, and
the first-come-first-served access that lets a transaction have it to itself."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import sqlite3
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import aiosqlite

from bot.storage.base import StorageError

MEMORY = ":memory:"
BUSY_TIMEOUT_MS = 5000

Params = Sequence[object]


class SqliteUnavailable(StorageError):
    """The database file could not be opened, created or migrated (``reason`` says why)."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"the database at {path} cannot be used: {reason}")
        self.path = path
        self.reason = reason


class ReadOnlyUnit(StorageError):
    """A write was attempted inside :meth:`Storage.read`."""


def iso(instant: datetime) -> str:
    """An aware instant as the ISO 8601 UTC text stored in every time column."""
    if instant.tzinfo is None:
        raise ValueError("instants must be timezone-aware (UTC)")
    return instant.astimezone(UTC).isoformat()


def instant(text: str) -> datetime:
    """Stored ISO 8601 text back to an aware datetime."""
    return datetime.fromisoformat(text)


def maybe_instant(text: str | None) -> datetime | None:
    """:func:`instant` for a column that may be NULL."""
    return datetime.fromisoformat(text) if text else None


class Connection:
    """The statements of one connection, each a single trip to aiosqlite's thread.

    ``execute_fetchall`` runs the statement and collects its rows on the thread in one go
    (``execute`` + ``fetch`` + ``close`` would be three trips); row counts come from
    ``RETURNING`` instead of the cursor, for the same reason.
    """

    def __init__(self, raw: aiosqlite.Connection) -> None:
        self.raw = raw

    async def fetch_all(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        """Every row of a statement (a query, or a write with ``RETURNING``)."""
        try:
            return list(await self.raw.execute_fetchall(sql, params))
        except sqlite3.OperationalError as exc:
            if "readonly" in str(exc) or "read-only" in str(exc):
                raise ReadOnlyUnit("a read-only unit of work cannot write") from exc
            raise

    async def fetch_one(self, sql: str, params: Params = ()) -> sqlite3.Row | None:
        """The first row of a statement, or None."""
        return next(iter(await self.fetch_all(sql, params)), None)

    async def execute(self, sql: str, params: Params = ()) -> None:
        """Run a statement whose rows, if any, do not matter."""
        await self.fetch_all(sql, params)

    async def insert(self, sql: str, params: Params = ()) -> int:
        """Run an ``INSERT … RETURNING id``; the new row's id."""
        row = await self.fetch_one(sql, params)
        if row is None:
            raise StorageError("an insert wrote no row")
        return int(row[0])

    async def end(self, statement: str) -> None:
        """``COMMIT`` or ``ROLLBACK``; a rollback with no transaction open is not an error."""
        try:
            await self.raw.execute_fetchall(statement, ())
        except sqlite3.OperationalError as exc:
            if statement != "ROLLBACK" or "no transaction" not in str(exc):
                raise


async def connect(path: Path, *, read_only: bool = False) -> Connection:
    """Open ``path`` in WAL mode with foreign keys and a busy timeout (``read_only``: a
    connection that refuses every write, for :meth:`Storage.read`)."""
    raw = await aiosqlite.connect(path, isolation_level=None)
    try:
        raw.row_factory = sqlite3.Row
        if not read_only:
            await raw.execute_fetchall("PRAGMA journal_mode = WAL", ())
        for pragma in ("synchronous = NORMAL", "foreign_keys = ON"):
            await raw.execute_fetchall(f"PRAGMA {pragma}", ())
        await raw.execute_fetchall(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS:d}", ())
        if read_only:
            await raw.execute_fetchall("PRAGMA query_only = ON", ())
    except BaseException:
        with contextlib.suppress(sqlite3.Error, ValueError):
            await raw.close()
        raise
    return Connection(raw)


def absolute(path: Path | str) -> Path:
    """``path`` made absolute against the working directory (``:memory:`` stays as it is)."""
    if str(path) == MEMORY:
        return Path(path)
    return Path(os.path.abspath(Path(path).expanduser()))


def prepare(path: Path) -> None:
    """Create the database's folder if needed."""
    if str(path) != MEMORY:
        path.parent.mkdir(parents=True, exist_ok=True)


def why(path: Path, exc: OSError | sqlite3.Error) -> str:
    """What stopped the database from opening, in an operator's words."""
    text = str(exc).lower()
    if isinstance(exc, PermissionError) or "readonly" in text or "read-only" in text:
        return "permission denied: the bot's user cannot write there"
    if "not a database" in text:
        return "the file is not a SQLite database"
    if "unable to open" in text:
        folder = path.parent
        if not folder.is_dir():
            return f"its folder {folder} does not exist and could not be created"
        return "permission denied: the bot's user cannot create or open the file there"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc)


class SharedExclusive:
    """Readers share a connection; a write transaction has it to itself.

    aiosqlite runs one connection's calls one after another on its thread. Statements that
    are each their own transaction may be queued there together, so their thread trips overlap
    instead of waiting in line; an explicit transaction must not have anyone else's statement
    land between its ``BEGIN`` and ``COMMIT``, so it waits for the statements in flight and
    keeps the connection until it ends.

    Waiters are served first come, first served (a statement arriving behind a waiting
    transaction waits too, so neither kind starves the other), and each release wakes exactly
    the waiters it lets in: with a thousand jobs writing, a broadcast wake-up of every waiter
    would cost more than the statements themselves.
    """

    def __init__(self) -> None:
        self._sharing = 0
        self._exclusive = False
        self._waiters: collections.deque[tuple[bool, asyncio.Future[None]]] = collections.deque()

    def _free_for(self, exclusive: bool) -> bool:
        return not self._exclusive and (not exclusive or self._sharing == 0)

    def _take(self, exclusive: bool) -> None:
        if exclusive:
            self._exclusive = True
        else:
            self._sharing += 1

    def _release(self, exclusive: bool) -> None:
        if exclusive:
            self._exclusive = False
        else:
            self._sharing -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters:
            exclusive, waiter = self._waiters[0]
            if waiter.done():  # cancelled while waiting
                self._waiters.popleft()
                continue
            if not self._free_for(exclusive):
                return
            self._waiters.popleft()
            self._take(exclusive)
            waiter.set_result(None)
            if exclusive:
                return

    async def _acquire(self, exclusive: bool) -> None:
        if not self._waiters and self._free_for(exclusive):
            self._take(exclusive)
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (exclusive, waiter)
        self._waiters.append(entry)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release(exclusive)  # granted just as we were cancelled: hand it on
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(entry)
                self._wake()
            raise

    @contextlib.asynccontextmanager
    async def shared(self) -> AsyncIterator[None]:
        """Hold the connection together with other single statements."""
        await self._acquire(False)
        try:
            yield
        finally:
            self._release(False)

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        """Hold the connection alone."""
        await self._acquire(True)
        try:
            yield
        finally:
            self._release(True)
