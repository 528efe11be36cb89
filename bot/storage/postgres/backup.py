"""Backing up PostgreSQL: with PostgreSQL's own tools, not pikabot's.

``pg_dump`` takes a consistent snapshot of a live database (one repeatable-read transaction)
and ``pg_restore`` puts it back; there is nothing for pikabot to add, so ``pikabot backup``
says how instead of writing a file.
"""

from __future__ import annotations

from bot.storage.base import BackupUnsupported


def use_pg_dump(location: str) -> BackupUnsupported:
    """The one-line answer to a backup of the PostgreSQL database at ``location`` (a URL
    without its password)."""
    return BackupUnsupported(
        f"the database is PostgreSQL ({location}): back it up with pg_dump, e.g."
        f" pg_dump --format=custom --file=pikabot.dump '{location}' (the password from"
        " PGPASSWORD), and restore with pg_restore; pikabot backup copies SQLite databases"
    )
