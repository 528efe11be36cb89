"""Who may use a SQLite file at once: locks on a lock file beside it, held while it is open.

SQLite serialises single transactions across processes, but two bots on one file would each
resume, follow and post the same unfinished jobs, and a command writing while ``migrate-db``
copies the file would write a change the copy misses. So each process says what it is
(:class:`Role`) and takes the matching locks on two bytes of ``<database>.lock``:

============  =====================  ==================================================
role          byte 0 (the bot)       byte 1 (the copy)
============  =====================  ==================================================
``BOT``       exclusive              —           ``pikabot run``: one per file
``COMMAND``   —                      shared      ``quota``, ``generate``, ``sync``: beside
                                                 the bot, never during a copy
``COPY``      exclusive              exclusive   ``migrate-db``: alone
============  =====================  ==================================================

A refused process gets one line saying who is in the way. The operating system releases
these locks when the process ends however it ends (``kill -9`` included), so a stale lock file
never blocks a start. They are POSIX record locks (``lockf``), which belong to a process: two
storages opened by one process do not exclude each other (pikabot opens one). Where
``fcntl`` is missing (Windows) no lock is taken.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import IO

from bot.storage.base import Role, StorageError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

SUFFIX = ".lock"
BOT_BYTE = 0
COPY_BYTE = 1


class DatabaseInUse(StorageError):
    """Another pikabot process holds a lock this one needs."""


def lock_path(database: Path) -> Path:
    """The lock file of ``database`` (``pikabot.sqlite3`` → ``pikabot.sqlite3.lock``)."""
    return database.with_name(database.name + SUFFIX)


def _take(handle: IO[str], byte: int, *, shared: bool) -> bool:
    assert fcntl is not None
    mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
    try:
        fcntl.lockf(handle.fileno(), mode | fcntl.LOCK_NB, 1, byte, os.SEEK_SET)
    except OSError:
        return False
    return True


def _holder(handle: IO[str]) -> str:
    handle.seek(0)
    text = handle.read().strip()
    return f" (pid {text})" if text.isdigit() else ""


class WriterLock:
    """The locks of one process on one SQLite file, held until :meth:`release`."""

    def __init__(self, path: Path, handle: IO[str], role: Role) -> None:
        self.path = path
        self.role = role
        self._handle: IO[str] | None = handle

    @classmethod
    def acquire(cls, database: Path, role: Role) -> WriterLock:
        """Take ``role``'s locks on ``database`` or raise :class:`DatabaseInUse`."""
        path = lock_path(database)
        handle = path.open("a+", encoding="utf-8")
        if fcntl is not None:
            _lock(handle, database, role)
        return cls(path, handle, role)

    def release(self) -> None:
        """Let go of the locks (idempotent); the file stays for the next holder."""
        if self._handle is None:
            return
        if self.role is not Role.COMMAND:
            with contextlib.suppress(OSError):
                self._handle.seek(0)
                self._handle.truncate()
        self._handle.close()
        self._handle = None


def _lock(handle: IO[str], database: Path, role: Role) -> None:
    """Take ``role``'s locks (closing ``handle`` and raising when one is held)."""
    if role is not Role.COMMAND and not _take(handle, BOT_BYTE, shared=False):
        holder = _holder(handle)
        handle.close()
        raise DatabaseInUse(
            f"another pikabot process{holder} is running on {database}: SQLite allows one"
            " bot (or migrate-db) at a time; stop it first, or move to PostgreSQL to run"
            " several (see 'Running bigger' in the README)"
        )
    if role is not Role.BOT and not _take(handle, COPY_BYTE, shared=role is Role.COMMAND):
        handle.close()  # also lets go of byte 0
        if role is Role.COMMAND:
            raise DatabaseInUse(
                f"pikabot migrate-db is copying {database} to PostgreSQL: wait for it to"
                " finish, then point PIKABOT_DATABASE_URL at the new database"
            )
        raise DatabaseInUse(
            f"a pikabot command (generate, quota or sync) is using {database}: let it"
            " finish, then run migrate-db again"
        )
    if role is not Role.COMMAND:  # the one holder of byte 0 says who it is
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
