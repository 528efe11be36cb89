"""Which pikabot a database belongs to: its schema version, and the app version that last
migrated it (kept in the meta table under :data:`MIGRATED_BY`).

An older pikabot never opens a database a newer one migrated: it refuses in one line naming
both versions (:func:`too_new`), so a rollback cannot run old code on a schema it does not
know. Both backends write :data:`MIGRATED_BY` when they apply a migration.
"""

from __future__ import annotations

from bot import __version__
from bot.storage.base import SchemaTooNew

MIGRATED_BY = "migrated_by"
"""Meta key: the pikabot version (``bot.__version__``) that last applied a migration."""


def app_version() -> str:
    """This pikabot's version, as recorded in the databases it migrates."""
    return __version__


def too_new(location: str, stored: int, known: int, migrated_by: str | None) -> SchemaTooNew:
    """The one-line refusal of a database migrated by a newer pikabot than this one."""
    by = f"pikabot {migrated_by}" if migrated_by else "a newer pikabot"
    upgrade = f"upgrade to pikabot {migrated_by} or newer" if migrated_by else "upgrade pikabot"
    return SchemaTooNew(
        f"the database at {location} is at schema version {stored}, migrated by {by}, but this"
        f" is pikabot {app_version()}, which knows schema versions up to {known}: {upgrade}"
        " (or restore the backup taken before the upgrade)"
    )
