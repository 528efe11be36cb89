"""The PostgreSQL backend of :mod:`bot.storage`: the shared engine for several processes.

``open_postgres("postgresql://user:password@host:5432/db")`` opens an asyncpg pool
(``?pool_size=N`` in the URL, default :data:`~bot.storage.postgres.connect.DEFAULT_POOL_SIZE`),
applies the migrations of ``bot/storage/postgres/migrations`` under an advisory lock (two
processes starting together migrate once) and refuses a database migrated by a newer pikabot.
A server that cannot be reached, a refused login or a missing database is one
:class:`~bot.storage.base.StorageError` line, never showing the password.
"""

from __future__ import annotations

import asyncpg
import structlog

from bot.storage.base import Storage, StorageError
from bot.storage.postgres import connect
from bot.storage.postgres.storage import PostgresStorage

__all__ = ["PostgresStorage", "open_postgres"]

log = structlog.get_logger(__name__)


async def open_postgres(url: str, *, pool_size: int | None = None) -> Storage:
    """Open the database at ``url`` and migrate it; ``pool_size`` overrides the URL's."""
    target = connect.parse(url, pool_size)
    pool = await connect.create_pool(target)
    storage = PostgresStorage(pool, target)
    try:
        version = await storage.migrate()
    except StorageError:
        await pool.close()
        raise
    except asyncpg.PostgresError as failed:
        await pool.close()
        raise StorageError(
            f"cannot migrate {target.location}: {connect.first_line(str(failed), target)}"
        ) from None
    except (OSError, asyncpg.InterfaceError) as failed:
        pool.terminate()
        raise StorageError(connect.why(target, failed)) from None
    log.debug("storage.opened", backend="postgresql", location=target.location, version=version)
    return storage
