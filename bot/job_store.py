"""Job rows: create, read and move a job through its states."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import aiosqlite

from bot.models import GenerationRequest, Job, JobState, Origin, OriginKind
from bot.store import Store, Transaction, utcnow

_COLUMNS = (
    "id, guild_id, channel_id, user_id, user_name, request, provider, cost, reservation_id,"
    " state, status_message_id, result_message_id, provider_handle, error, extra,"
    " created_at, updated_at, started_at, finished_at, origin_kind"
)


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def row_to_job(row: aiosqlite.Row) -> Job:
    """Build a :class:`Job` from a row selected with this module's column list."""
    created = _dt(row["created_at"])
    updated = _dt(row["updated_at"])
    assert created is not None and updated is not None
    return Job(
        id=int(row["id"]),
        origin=Origin(
            guild_id=int(row["guild_id"]),
            channel_id=int(row["channel_id"]),
            user_id=int(row["user_id"]),
            user_name=str(row["user_name"]),
            kind=OriginKind(row["origin_kind"]),
        ),
        request=GenerationRequest.model_validate_json(row["request"]),
        provider=str(row["provider"]),
        cost=int(row["cost"]),
        reservation_id=row["reservation_id"],
        state=JobState(row["state"]),
        created_at=created,
        updated_at=updated,
        status_message_id=row["status_message_id"],
        provider_handle=json.loads(row["provider_handle"]) if row["provider_handle"] else None,
        started_at=_dt(row["started_at"]),
        finished_at=_dt(row["finished_at"]),
        error=row["error"],
        result_message_id=row["result_message_id"],
        extra=json.loads(row["extra"] or "{}"),
    )


class JobStore:
    """Persistence of jobs. Every state change is written before the side effect it enables."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def create(
        self,
        db: Transaction,
        *,
        origin: Origin,
        request: GenerationRequest,
        provider: str,
        cost: int,
        reservation_id: int | None,
        extra: dict[str, str] | None = None,
    ) -> Job:
        """Insert a PENDING job inside the caller's transaction (with its reservation)."""
        now = utcnow()
        extra = dict(extra or {})
        job_id = await db.execute(
            "INSERT INTO jobs (guild_id, channel_id, user_id, user_name, request, provider, cost,"
            " reservation_id, state, extra, created_at, updated_at, origin_kind)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                origin.guild_id,
                origin.channel_id,
                origin.user_id,
                origin.user_name,
                request.model_dump_json(),
                provider,
                cost,
                reservation_id,
                JobState.PENDING.value,
                json.dumps(extra),
                now.isoformat(),
                now.isoformat(),
                origin.kind.value,
            ),
        )
        return Job(
            id=job_id,
            origin=origin,
            request=request,
            provider=provider,
            cost=cost,
            reservation_id=reservation_id,
            state=JobState.PENDING,
            created_at=now,
            updated_at=now,
            extra=extra,
        )

    async def get(self, job_id: int) -> Job | None:
        """The job with this id, or None."""
        row = await self._store.fetch_one(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,))
        return row_to_job(row) if row else None

    async def find_by_message(self, message_id: int) -> Job | None:
        """The job whose status or result message has this id."""
        row = await self._store.fetch_one(
            f"SELECT {_COLUMNS} FROM jobs WHERE result_message_id = ? OR status_message_id = ?"
            " ORDER BY id DESC LIMIT 1",
            (message_id, message_id),
        )
        return row_to_job(row) if row else None

    async def unfinished(self) -> list[Job]:
        """Every job that has not reached a terminal state, oldest first."""
        rows = await self._store.fetch_all(
            f"SELECT {_COLUMNS} FROM jobs"
            " WHERE state NOT IN ('delivered', 'failed', 'cancelled') ORDER BY id"
        )
        return [row_to_job(r) for r in rows]

    async def recent_for_user(self, guild_id: int, user_id: int, limit: int = 10) -> list[Job]:
        """A member's latest jobs in a guild, newest first."""
        rows = await self._store.fetch_all(
            f"SELECT {_COLUMNS} FROM jobs WHERE guild_id = ? AND user_id = ?"
            " ORDER BY id DESC LIMIT ?",
            (guild_id, user_id, limit),
        )
        return [row_to_job(r) for r in rows]

    async def update(self, job: Job, **fields: Any) -> None:
        """Write ``fields`` (column names) and mirror them on ``job``; stamps ``updated_at``."""
        async with self._store.transaction() as db:
            await self.update_in(db, job, **fields)

    async def update_in(self, db: Transaction, job: Job, **fields: Any) -> None:
        """:meth:`update` inside the caller's transaction."""
        now = utcnow()
        fields["updated_at"] = now
        columns, values = [], []
        for name, value in fields.items():
            columns.append(f"{name} = ?")
            values.append(_to_sql(value))
            setattr(job, name, value)
        await db.execute(f"UPDATE jobs SET {', '.join(columns)} WHERE id = ?", (*values, job.id))


def _to_sql(value: Any) -> Any:
    if isinstance(value, JobState):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return json.dumps(value)
    return value


class MemberJobs:
    """A member's jobs as the rules need them: how many run now, when the last one began.

    Kept beside :class:`JobStore` because it owns the ``jobs`` table's SQL.
    """

    @staticmethod
    async def running_in(db: Transaction, guild_id: int, user_id: int) -> int:
        """The member's jobs that have not reached a terminal state."""
        row = await db.fetch_one(
            "SELECT COUNT(*) AS n FROM jobs WHERE guild_id = ? AND user_id = ?"
            " AND state NOT IN ('delivered', 'failed', 'cancelled')",
            (guild_id, user_id),
        )
        return int(row["n"]) if row else 0

    @staticmethod
    async def last_created_in(db: Transaction, guild_id: int, user_id: int) -> datetime | None:
        """When the member's latest job was created, if ever."""
        row = await db.fetch_one(
            "SELECT created_at FROM jobs WHERE guild_id = ? AND user_id = ?"
            " ORDER BY id DESC LIMIT 1",
            (guild_id, user_id),
        )
        return _dt(row["created_at"]) if row else None

    @staticmethod
    async def recent_in(db: Transaction, guild_id: int, limit: int = 10) -> list[Job]:
        """The guild's latest jobs, newest first."""
        rows = await db.fetch_all(
            f"SELECT {_COLUMNS} FROM jobs WHERE guild_id = ? ORDER BY id DESC LIMIT ?",
            (guild_id, limit),
        )
        return [row_to_job(r) for r in rows]
