"""Job rows in PostgreSQL, and the leases that give each unfinished job to one process."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from asyncpg import Record

from bot.models import GenerationRequest, Job, JobState, Origin, OriginKind
from bot.storage.base import NewJob
from bot.storage.postgres.types import Connection, aware, maybe_aware
from bot.storage.records import LineSnapshot, WaitingJob

_FIELDS = (
    "id, guild_id, channel_id, user_id, user_name, request, provider, cost, reservation_id,"
    " state, status_message_id, result_message_id, provider_handle, error, extra,"
    " created_at, updated_at, started_at, finished_at, origin_kind"
)
_UNFINISHED = "state NOT IN ('delivered', 'failed', 'cancelled')"

_UPDATABLE: dict[str, str] = {
    "state": "text",
    "provider_handle": "json",
    "extra": "json",
    "status_message_id": "plain",
    "result_message_id": "plain",
    "error": "plain",
    "started_at": "instant",
    "finished_at": "instant",
}
"""The :class:`~bot.models.Job` attributes :meth:`PostgresJobs.update` writes, and how."""


def _job(row: Record) -> Job:
    return Job(
        id=row["id"],
        origin=Origin(
            guild_id=row["guild_id"],
            channel_id=row["channel_id"],
            user_id=row["user_id"],
            user_name=row["user_name"],
            kind=OriginKind(row["origin_kind"]),
        ),
        request=GenerationRequest.model_validate_json(row["request"]),
        provider=row["provider"],
        cost=row["cost"],
        reservation_id=row["reservation_id"],
        state=JobState(row["state"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        status_message_id=row["status_message_id"],
        provider_handle=json.loads(row["provider_handle"]) if row["provider_handle"] else None,
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        error=row["error"],
        result_message_id=row["result_message_id"],
        extra=json.loads(row["extra"] or "{}"),
    )


def _column_value(how: str, value: Any) -> Any:
    if value is None:
        return None
    if how == "json":
        return json.dumps(value)
    if how == "instant":
        return aware(value)
    if how == "text":
        return str(JobState(value).value)
    return value


class PostgresJobs:
    """:class:`~bot.storage.base.JobRepo` on one connection inside its unit's transaction."""

    def __init__(self, connection: Connection) -> None:
        self._db = connection

    async def create(self, job: NewJob, now: datetime) -> Job:
        """Insert a PENDING job; the stored job."""
        origin = job.origin
        row = await self._db.fetchrow(
            "INSERT INTO jobs (guild_id, channel_id, user_id, user_name, request, provider,"
            " cost, reservation_id, state, extra, created_at, updated_at, origin_kind,"
            " lease_owner, lease_expires_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12, $13, $14)"
            f" RETURNING {_FIELDS}",
            origin.guild_id,
            origin.channel_id,
            origin.user_id,
            origin.user_name,
            job.request.model_dump_json(),
            job.provider,
            job.cost,
            job.reservation_id,
            JobState.PENDING.value,
            json.dumps(dict(job.extra)),
            aware(now),
            OriginKind(origin.kind).value,
            job.lease_owner,
            maybe_aware(job.lease_until),
        )
        assert row is not None
        return _job(row)

    async def get(self, job_id: int) -> Job | None:
        """The job with this id."""
        row = await self._db.fetchrow(f"SELECT {_FIELDS} FROM jobs WHERE id = $1", job_id)
        return None if row is None else _job(row)

    async def lock(self, job_id: int) -> Job | None:
        """The job with this id, its row locked (``FOR UPDATE``) until the unit ends."""
        row = await self._db.fetchrow(
            f"SELECT {_FIELDS} FROM jobs WHERE id = $1 FOR UPDATE", job_id
        )
        return _job(row) if row else None

    async def update(self, job_id: int, fields: Mapping[str, Any], now: datetime) -> None:
        """Write ``fields``, named as :class:`~bot.models.Job` attributes; stamps
        ``updated_at``."""
        unknown = sorted(set(fields) - set(_UPDATABLE))
        if unknown:
            raise ValueError(f"not updatable job fields: {', '.join(unknown)}")
        names = list(fields)
        assignments = "".join(f"{name} = ${i}, " for i, name in enumerate(names, start=2))
        await self._db.execute(
            f"UPDATE jobs SET {assignments}updated_at = ${len(names) + 2} WHERE id = $1",
            job_id,
            *(_column_value(_UPDATABLE[name], fields[name]) for name in names),
            aware(now),
        )

    async def find_by_message(self, message_id: int) -> Job | None:
        """The newest job whose status or result message has this id."""
        row = await self._db.fetchrow(
            f"SELECT {_FIELDS} FROM jobs WHERE result_message_id = $1 OR status_message_id = $1"
            " ORDER BY id DESC LIMIT 1",
            message_id,
        )
        return None if row is None else _job(row)

    async def unfinished(self) -> list[Job]:
        """Every job not in a terminal state, oldest first."""
        rows = await self._db.fetch(f"SELECT {_FIELDS} FROM jobs WHERE {_UNFINISHED} ORDER BY id")
        return [_job(r) for r in rows]

    async def recent(self, guild_id: int, user_id: int | None, limit: int) -> list[Job]:
        """The guild's (or one member's) latest jobs, newest first."""
        rows = await self._db.fetch(
            f"SELECT {_FIELDS} FROM jobs WHERE guild_id = $1"
            " AND ($2::BIGINT IS NULL OR user_id = $2) ORDER BY id DESC LIMIT $3",
            guild_id,
            user_id,
            limit,
        )
        return [_job(r) for r in rows]

    async def running_count(self, guild_id: int, user_id: int) -> int:
        """The member's jobs not in a terminal state."""
        count = await self._db.fetchval(
            f"SELECT COUNT(*) FROM jobs WHERE guild_id = $1 AND user_id = $2 AND {_UNFINISHED}",
            guild_id,
            user_id,
        )
        return int(count)

    async def last_created_at(self, guild_id: int, user_id: int) -> datetime | None:
        """When the member's latest job was created, if ever."""
        created: datetime | None = await self._db.fetchval(
            "SELECT created_at FROM jobs WHERE guild_id = $1 AND user_id = $2"
            " ORDER BY id DESC LIMIT 1",
            guild_id,
            user_id,
        )
        return created

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
        """Lease up to ``limit`` unfinished jobs whose lease is free or expired to ``owner``
        until ``until``, oldest first; rows another unit has locked are skipped. ``kinds``:
        only jobs of these origins (None: any); ``reclaim``: also those still leased to
        ``owner``."""
        origins = None if kinds is None else sorted(OriginKind(k).value for k in kinds)
        rows = await self._db.fetch(
            "UPDATE jobs SET lease_owner = $1, lease_expires_at = $3"
            " WHERE id IN (SELECT id FROM jobs"
            f" WHERE {_UNFINISHED}"
            " AND (lease_owner IS NULL OR lease_expires_at IS NULL OR lease_expires_at <= $2"
            " OR ($6 AND lease_owner = $1))"
            " AND ($5::TEXT[] IS NULL OR origin_kind = ANY($5::TEXT[]))"
            " ORDER BY id LIMIT $4 FOR UPDATE SKIP LOCKED)"
            f" RETURNING {_FIELDS}",
            owner,
            aware(now),
            aware(until),
            limit,
            origins,
            reclaim,
        )
        return sorted((_job(r) for r in rows), key=lambda job: job.id)

    async def renew(self, owner: str, job_ids: Sequence[int], until: datetime) -> list[int]:
        """Extend ``owner``'s leases; the ids it still holds (a lost lease is not renewed,
        nor one of a finished job)."""
        rows = await self._db.fetch(
            "UPDATE jobs SET lease_expires_at = $3"
            f" WHERE id = ANY($2::BIGINT[]) AND lease_owner = $1 AND {_UNFINISHED} RETURNING id",
            owner,
            list(job_ids),
            aware(until),
        )
        return sorted(int(r["id"]) for r in rows)

    async def release(self, owner: str, job_ids: Sequence[int]) -> None:
        """Give up ``owner``'s leases on these jobs (they stay unfinished for others)."""
        await self._db.execute(
            "UPDATE jobs SET lease_owner = NULL, lease_expires_at = NULL"
            " WHERE id = ANY($2::BIGINT[]) AND lease_owner = $1",
            owner,
            list(job_ids),
        )

    async def line(self, now: datetime) -> LineSnapshot:
        """The fair line's facts at ``now``: waiting jobs, slots held, last starts."""
        waiting = await self._db.fetch(
            "SELECT id, guild_id, created_at FROM jobs WHERE state = 'pending'"
            " AND slot_at IS NULL AND (lease_owner IS NULL OR lease_expires_at > $1)"
            " ORDER BY id",
            aware(now),
        )
        running = await self._db.fetch(
            "SELECT guild_id, COUNT(*) AS n FROM jobs"
            f" WHERE slot_at IS NOT NULL AND {_UNFINISHED} GROUP BY guild_id"
        )
        guilds = sorted({int(r["guild_id"]) for r in waiting})
        starts = await self._db.fetch(
            "SELECT guild_id, MAX(slot_at) AS at FROM jobs"
            " WHERE guild_id = ANY($1::BIGINT[]) AND slot_at IS NOT NULL GROUP BY guild_id",
            guilds,
        )
        return LineSnapshot(
            waiting=tuple(
                WaitingJob(int(r["id"]), int(r["guild_id"]), aware(r["created_at"]))
                for r in waiting
            ),
            running={int(r["guild_id"]): int(r["n"]) for r in running},
            last_start={int(r["guild_id"]): aware(r["at"]) for r in starts},
        )

    async def take_slots(self, job_ids: Sequence[int], now: datetime) -> None:
        """Mark these jobs as holding a slot from ``now`` (one already holding keeps its)."""
        await self._db.execute(
            "UPDATE jobs SET slot_at = $2 WHERE slot_at IS NULL AND id = ANY($1::BIGINT[])",
            list(job_ids),
            aware(now),
        )

    async def open_counts(self, guild_id: int) -> tuple[int, int]:
        """Unfinished jobs of the whole bot and of this guild."""
        row = await self._db.fetchrow(
            "SELECT COUNT(*) AS total, COUNT(*) FILTER (WHERE guild_id = $1) AS here"
            f" FROM jobs WHERE {_UNFINISHED}",
            guild_id,
        )
        return (int(row["total"]), int(row["here"])) if row else (0, 0)
