"""The connection type every repository of the PostgreSQL backend works on."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:  # asyncpg's classes are generic only in its stubs
    from asyncpg import Record
    from asyncpg.pool import PoolConnectionProxy

Connection: TypeAlias = "PoolConnectionProxy[Record]"
"""A connection lent by the pool for one unit of work (inside its transaction)."""


def aware(instant: datetime) -> datetime:
    """``instant`` if it is timezone-aware; a naive one is refused (as on SQLite), since
    asyncpg would take it for the machine's local time."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("instants must be timezone-aware (UTC)")
    return instant


def maybe_aware(instant: datetime | None) -> datetime | None:
    """:func:`aware` for a value that may be None."""
    return None if instant is None else aware(instant)
