"""Consistent copies of a SQLite database while it is in use: SQLite's online backup API.

The copy is made on a connection of its own (so it works beside a running bot, from another
process too) in one step: one read transaction, so it is one snapshot of the database, taken
without stopping the writers (WAL lets them go on) and never restarted by them. It is
written to a temporary file beside the target, switched to a plain rollback journal (one
self-contained file, nothing to copy beside it), checked (``PRAGMA quick_check``) and only
then renamed into place, so a target that exists is always a whole, checked database.

Before migrations are applied to an existing database, :func:`before_migrating` keeps one
such copy in ``backups/`` beside it (the last :data:`KEPT` of them).
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
from datetime import datetime
from pathlib import Path

from bot.storage.base import Backup, BackupFailed

BACKUP_FOLDER = "backups"
"""Where the automatic backups go, beside the database file."""
KEPT = 5
"""How many automatic backups of one database are kept (the oldest are deleted)."""
SUFFIX = ".sqlite3"
_STAMP = "%Y%m%dT%H%M%SZ"


def backup_name(database: Path, schema_version: int, at: datetime) -> str:
    """``<database stem>-<schema version>-<UTC time>.sqlite3``, e.g.
    ``pikabot-6-20260102T030405Z.sqlite3``: names sort by time within one schema version."""
    return f"{database.stem}-{schema_version}-{at.strftime(_STAMP)}{SUFFIX}"


def copy_database(source: Path, target: Path) -> Backup:
    """Write a consistent, checked copy of ``source`` to ``target`` (which must not exist).

    Blocking: run it in a thread (:func:`asyncio.to_thread`). Raises :class:`BackupFailed`.
    """
    if not source.is_file():
        raise BackupFailed(f"there is no SQLite database at {source} to back up")
    if target.exists():
        raise BackupFailed(f"{target} already exists: name a new file (or a folder)")
    partial = target.with_name(f".{target.name}.partial")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()  # left by a backup that was killed
        version = _copy(source, partial)
        os.replace(partial, target)
    except (OSError, sqlite3.Error, BackupFailed) as failed:
        with contextlib.suppress(OSError):
            partial.unlink()
        if isinstance(failed, BackupFailed):
            raise
        raise BackupFailed(f"could not back up {source} to {target}: {_why(failed)}") from None
    return Backup(str(source), target, version, target.stat().st_size)


def _copy(source: Path, partial: Path) -> int:
    """The online backup into ``partial``, made self-contained and checked; its schema."""
    # Read-only: the backup never writes the source, not even its WAL index header.
    reader = sqlite3.connect(f"{source.absolute().as_uri()}?mode=ro", uri=True)
    try:
        reader.execute("PRAGMA busy_timeout = 5000")
        copy = sqlite3.connect(partial)
        try:
            reader.backup(copy)  # pages=-1: every page in one step, one snapshot
            copy.execute("PRAGMA journal_mode = DELETE")  # one file: no -wal beside it
            verdict = copy.execute("PRAGMA quick_check").fetchone()
            if verdict is None or verdict[0] != "ok":
                raise BackupFailed(f"the copy of {source} did not pass SQLite's check")
            row = copy.execute("PRAGMA user_version").fetchone()
        finally:
            copy.close()
    finally:
        reader.close()
    return int(row[0]) if row else 0


def stored_version(database: Path) -> int:
    """The schema version of the SQLite file ``database`` (read-only; blocking)."""
    reader = sqlite3.connect(f"{database.absolute().as_uri()}?mode=ro", uri=True)
    try:
        row = reader.execute("PRAGMA user_version").fetchone()
    finally:
        reader.close()
    return int(row[0]) if row else 0


def backup_to(database: Path, target: Path, at: datetime) -> Backup:
    """``pikabot backup``: copy ``database`` to the new file ``target``, or into the folder
    ``target`` under :func:`backup_name` (blocking). Raises :class:`BackupFailed`."""
    if target.is_dir():
        if not database.is_file():
            raise BackupFailed(f"there is no SQLite database at {database} to back up")
        try:
            version = stored_version(database)
        except sqlite3.Error as failed:
            raise BackupFailed(f"could not read {database}: {_why(failed)}") from None
        target = target / backup_name(database, version, at)
    return copy_database(database, target)


def before_migrating(database: Path, schema_version: int, at: datetime) -> Backup:
    """The automatic backup taken before migrations are applied to ``database`` (at
    ``schema_version``), in its ``backups/`` folder; older ones beyond :data:`KEPT` go."""
    folder = database.parent / BACKUP_FOLDER
    made = copy_database(database, folder / backup_name(database, schema_version, at))
    prune(folder, database, keep=KEPT)
    return made


def automatic_backups(folder: Path, database: Path) -> list[Path]:
    """The automatic backups of ``database`` in ``folder``, oldest first."""
    pattern = re.compile(
        rf"^{re.escape(database.stem)}-(\d+)-(\d{{8}}T\d{{6}}Z){re.escape(SUFFIX)}$"
    )
    found = []
    for entry in folder.iterdir() if folder.is_dir() else ():
        match = pattern.match(entry.name)
        if match and entry.is_file():
            found.append((match.group(2), int(match.group(1)), entry))
    return [path for _, _, path in sorted(found)]


def prune(folder: Path, database: Path, *, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` automatic backups of ``database``; the deleted."""
    old = automatic_backups(folder, database)[:-keep] if keep > 0 else []
    for path in old:
        with contextlib.suppress(OSError):
            path.unlink()
    return old


def _why(failed: BaseException) -> str:
    if isinstance(failed, OSError) and failed.strerror:
        return failed.strerror.lower()
    return str(failed) or type(failed).__name__
