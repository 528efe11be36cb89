"""The connection type every repository of the PostgreSQL backend works on."""

from __future__ import annotations

from asyncpg import Record
from asyncpg.pool import PoolConnectionProxy

Connection = PoolConnectionProxy[Record]
"""A connection lent by the pool for one unit of work (inside its transaction)."""
