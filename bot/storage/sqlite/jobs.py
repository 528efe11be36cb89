"""JobRepo over SQLite: the ``jobs`` table, its queries and its leases."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from bot.models import GenerationRequest, Job, JobState, Origin, OriginKind
from bot.storage.base import NewJob
from bot.storage.records import LineSnapshot, WaitingJob
from bot.storage.sqlite.connection import Connection, instant, iso, maybe_instant

_COLUMNS = (
    "id, guild_id, channel_id, user_id, user_name, request, provider, cost, reservation_id,"
    " state, status_message_id, result_message_id, provider_handle, error, extra,"
    " created_at, updated_at, started_at, finished_at, origin_kind"
)
_OPEN = "state NOT IN ('delivered', 'failed', 'cancelled')"


def _json(value: object) -> str | None:
    return None if value is None else json.dumps(value)


def _maybe_iso(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise TypeError(f"not a datetime: {value!r}")
    return iso(value)


def _state(value: object) -> str:
    return JobState(value).value  # type: ignore[arg-type]


_FIELDS: dict[str, Callable[[Any], object]] = {
    "state": _state,
    "provider_handle": _json,
    "extra": lambda v: json.dumps(v or {}),
    "status_message_id": lambda v: v,
    "result_message_id": lambda v: v,
    "error": lambda v: v,
    "started_at": _maybe_iso,
    "finished_at": _maybe_iso,
}
"""The job attributes :meth:`SqliteJobs.update` writes, with their conversion to SQL."""


def row_to_job(row: sqlite3.Row) -> Job:
    """A :class:`Job` from a row selected with this module's column list."""
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
        created_at=instant(row["created_at"]),
        updated_at=instant(row["updated_at"]),
        status_message_id=row["status_message_id"],
        provider_handle=json.loads(row["provider_handle"]) if row["provider_handle"] else None,
        started_at=maybe_instant(row["started_at"]),
        finished_at=maybe_instant(row["finished_at"]),
        error=row["error"],
        result_message_id=row["result_message_id"],
        extra=json.loads(row["extra"] or "{}"),
    )


def _marks(ids: Sequence[object]) -> str:
    return ", ".join("?" for _ in ids)


class SqliteJobs:
    """Job rows inside one unit's transaction."""

    def __init__(self, db: Connection) -> None:
        self._db = db

    async def create(self, job: NewJob, now: datetime) -> Job:
        """Insert a PENDING job; the stored job."""
        stamp = iso(now)
        extra = dict(job.extra)
        origin = job.origin
        job_id = await self._db.insert(
            "INSERT INTO jobs (guild_id, channel_id, user_id, user_name, request, provider, cost,"
            " reservation_id, state, extra, created_at, updated_at, origin_kind, lease_owner,"
            " lease_expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (
                origin.guild_id,
                origin.channel_id,
                origin.user_id,
                origin.user_name,
                job.request.model_dump_json(),
                job.provider,
                job.cost,
                job.reservation_id,
                JobState.PENDING.value,
                json.dumps(extra),
                stamp,
                stamp,
                origin.kind.value,
                job.lease_owner,
                _maybe_iso(job.lease_until),
            ),
        )
        return Job(
            id=job_id,
            origin=origin,
            request=job.request,
            provider=job.provider,
            cost=job.cost,
            reservation_id=job.reservation_id,
            state=JobState.PENDING,
            created_at=instant(stamp),
            updated_at=instant(stamp),
            extra=extra,
        )

    async def get(self, job_id: int) -> Job | None:
        """The job with this id."""
        row = await self._db.fetch_one(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,))
        return row_to_job(row) if row else None

    async def lock(self, job_id: int) -> Job | None:
        """The job with this id (a write unit holds the whole file: nothing to lock)."""
        return await self.get(job_id)

    async def update(self, job_id: int, fields: Mapping[str, Any], now: datetime) -> None:
        """Write ``fields``, named as :class:`~bot.models.Job` attributes; stamps
        ``updated_at``."""
        columns, values = [], []
        for name, value in fields.items():
            convert = _FIELDS.get(name)
            if convert is None:
                raise ValueError(f"not a job field that changes: {name}")
            columns.append(f"{name} = ?")
            values.append(convert(value))
        columns.append("updated_at = ?")
        await self._db.execute(
            f"UPDATE jobs SET {', '.join(columns)} WHERE id = ?", (*values, iso(now), job_id)
        )

    async def find_by_message(self, message_id: int) -> Job | None:
        """The newest job whose status or result message has this id."""
        row = await self._db.fetch_one(
            f"SELECT {_COLUMNS} FROM jobs WHERE result_message_id = ? OR status_message_id = ?"
            " ORDER BY id DESC LIMIT 1",
            (message_id, message_id),
        )
        return row_to_job(row) if row else None

    async def unfinished(self) -> list[Job]:
        """Every job not in a terminal state, oldest first."""
        rows = await self._db.fetch_all(f"SELECT {_COLUMNS} FROM jobs WHERE {_OPEN} ORDER BY id")
        return [row_to_job(r) for r in rows]

    async def recent(self, guild_id: int, user_id: int | None, limit: int) -> list[Job]:
        """The guild's (or one member's) latest jobs, newest first."""
        if user_id is None:
            rows = await self._db.fetch_all(
                f"SELECT {_COLUMNS} FROM jobs WHERE guild_id = ? ORDER BY id DESC LIMIT ?",
                (guild_id, limit),
            )
        else:
            rows = await self._db.fetch_all(
                f"SELECT {_COLUMNS} FROM jobs WHERE guild_id = ? AND user_id = ?"
                " ORDER BY id DESC LIMIT ?",
                (guild_id, user_id, limit),
            )
        return [row_to_job(r) for r in rows]

    async def running_count(self, guild_id: int, user_id: int) -> int:
        """The member's jobs not in a terminal state."""
        row = await self._db.fetch_one(
            f"SELECT COUNT(*) AS n FROM jobs WHERE guild_id = ? AND user_id = ? AND {_OPEN}",
            (guild_id, user_id),
        )
        return int(row["n"]) if row else 0

    async def last_created_at(self, guild_id: int, user_id: int) -> datetime | None:
        """When the member's latest job was created, if ever."""
        row = await self._db.fetch_one(
            "SELECT created_at FROM jobs WHERE guild_id = ? AND user_id = ?"
            " ORDER BY id DESC LIMIT 1",
            (guild_id, user_id),
        )
        return instant(row["created_at"]) if row else None

    async def claim(
        self,
        owner: str,
        now: datetime,
        until: datetime,
        limit: int,
        *,
        kinds: Collection[OriginKind] | None = None,
        reclaim: bool = False,
    ) -> list[Job]:
        """Lease up to ``limit`` unfinished jobs whose lease is free or expired (at or before
        ``now``) to ``owner`` until ``until``, oldest first. A write unit is exclusive on
        SQLite, so two claims never see the same free job. ``kinds``: only jobs of these
        origins (None: any); ``reclaim``: also those still leased to ``owner``."""
        origins = [] if kinds is None else sorted(OriginKind(k).value for k in kinds)
        if kinds is not None and not origins:
            return []
        only = f" AND origin_kind IN ({_marks(origins)})" if origins else ""
        rows = await self._db.fetch_all(
            "UPDATE jobs SET lease_owner = ?, lease_expires_at = ? WHERE id IN ("
            f" SELECT id FROM jobs WHERE {_OPEN}"
            " AND (lease_expires_at IS NULL OR lease_expires_at <= ? OR (? AND lease_owner = ?))"
            f"{only} ORDER BY id LIMIT ?) RETURNING {_COLUMNS}",
            (owner, iso(until), iso(now), reclaim, owner, *origins, limit),
        )
        return sorted((row_to_job(r) for r in rows), key=lambda job: job.id)

    async def renew(self, owner: str, job_ids: Sequence[int], until: datetime) -> list[int]:
        """Extend ``owner``'s leases on unfinished jobs; the ids it still holds, sorted."""
        if not job_ids:
            return []
        rows = await self._db.fetch_all(
            f"UPDATE jobs SET lease_expires_at = ? WHERE lease_owner = ? AND {_OPEN}"
            f" AND id IN ({_marks(job_ids)}) RETURNING id",
            (iso(until), owner, *job_ids),
        )
        return sorted(int(r["id"]) for r in rows)

    async def release(self, owner: str, job_ids: Sequence[int]) -> None:
        """Give up ``owner``'s leases on these jobs (they stay unfinished for others)."""
        if not job_ids:
            return
        await self._db.execute(
            "UPDATE jobs SET lease_owner = NULL, lease_expires_at = NULL"
            f" WHERE lease_owner = ? AND id IN ({_marks(job_ids)})",
            (owner, *job_ids),
        )

    async def line(self, now: datetime) -> LineSnapshot:
        """The fair line's facts at ``now``: waiting jobs, slots held, last starts."""
        waiting = await self._db.fetch_all(
            "SELECT id, guild_id, created_at FROM jobs WHERE state = 'pending'"
            " AND slot_at IS NULL AND (lease_owner IS NULL OR lease_expires_at > ?)"
            " ORDER BY id",
            (iso(now),),
        )
        running = await self._db.fetch_all(
            f"SELECT guild_id, COUNT(*) AS n FROM jobs WHERE slot_at IS NOT NULL AND {_OPEN}"
            " GROUP BY guild_id"
        )
        guilds = sorted({int(r["guild_id"]) for r in waiting})
        starts = (
            await self._db.fetch_all(
                "SELECT guild_id, MAX(slot_at) AS at FROM jobs"
                f" WHERE guild_id IN ({_marks(guilds)}) AND slot_at IS NOT NULL GROUP BY guild_id",
                tuple(guilds),
            )
            if guilds
            else []
        )
        return LineSnapshot(
            waiting=tuple(
                WaitingJob(int(r["id"]), int(r["guild_id"]), instant(r["created_at"]))
                for r in waiting
            ),
            running={int(r["guild_id"]): int(r["n"]) for r in running},
            last_start={int(r["guild_id"]): instant(r["at"]) for r in starts},
        )

    async def take_slots(self, job_ids: Sequence[int], now: datetime) -> None:
        """Mark these jobs as holding a slot from ``now`` (one already holding keeps its)."""
        if not job_ids:
            return
        await self._db.execute(
            f"UPDATE jobs SET slot_at = ? WHERE slot_at IS NULL AND id IN ({_marks(job_ids)})",
            (iso(now), *job_ids),
        )

    async def open_counts(self, guild_id: int) -> tuple[int, int]:
        """Unfinished jobs of the whole bot and of this guild."""
        row = await self._db.fetch_one(
            "SELECT COUNT(*) AS total, COALESCE(SUM(guild_id = ?), 0) AS here"
            f" FROM jobs WHERE {_OPEN}",
            (guild_id,),
        )
        return (int(row["total"]), int(row["here"])) if row else (0, 0)
