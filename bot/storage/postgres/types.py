"""The connection type every repository of the PostgreSQL backend works on."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:  # asyncpg's classes are generic only in its stubs
    from asyncpg import Record
    from asyncpg.pool import PoolConnectionProxy

Connection: TypeAlias = "PoolConnectionProxy[Record]"
"""A connection lent by the pool for one unit of work (inside its transaction)."""
