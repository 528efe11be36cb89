"""One long-lived writer per SQLite file: an exclusive ``flock`` on a lock file beside it.

SQLite serialises single transactions across processes, but two bots on one file would each
resume, follow and post the same unfinished jobs. So ``pikabot run`` and ``pikabot migrate-db``
hold this lock for as long as their database is open; a second one is refused at once with
one line. Short operator commands (``pikabot quota …``, ``pikabot sync``) and ``pikabot
generate`` (whose jobs have their own :class:`~bot.lease.TerminalLease`) do not take it: their
writes are single ``BEGIN IMMEDIATE`` transactions serialised with the bot's.

The operating system releases an ``flock`` when its process ends however it ends (``kill -9``
included), so a stale lock file never blocks a start. Where ``fcntl`` is missing (Windows) no
lock is taken.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import IO

from bot.storage.base import StorageError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

SUFFIX = ".lock"


class DatabaseInUse(StorageError):
    """Another pikabot process holds the SQLite file's writer lock."""


def lock_path(database: Path) -> Path:
    """The lock file of ``database`` (``pikabot.sqlite3`` → ``pikabot.sqlite3.lock``)."""
    return database.with_name(database.name + SUFFIX)


class WriterLock:
    """The exclusive lock of one SQLite file, held until :meth:`release`."""

    def __init__(self, path: Path, handle: IO[str]) -> None:
        self.path = path
        self._handle: IO[str] | None = handle

    @classmethod
    def acquire(cls, database: Path) -> WriterLock:
        """Take the lock of ``database`` or raise :class:`DatabaseInUse` saying who holds it."""
        path = lock_path(database)
        handle = path.open("a+", encoding="utf-8")
        if fcntl is not None:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.seek(0)
                holder = handle.read().strip()
                handle.close()
                who = f" (pid {holder})" if holder.isdigit() else ""
                raise DatabaseInUse(
                    f"another pikabot process{who} is running on {database}: SQLite allows one"
                    " bot (or migrate-db) at a time; stop it first, or move to PostgreSQL to run"
                    " several (see 'Running bigger' in the README)"
                ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        return cls(path, handle)

    def release(self) -> None:
        """Let go of the lock (idempotent); the file stays, empty, for the next holder."""
        if self._handle is None:
            return
        with contextlib.suppress(OSError):
            self._handle.seek(0)
            self._handle.truncate()
        self._handle.close()
        self._handle = None
