"""The storage boundary: repositories as Protocols, and the unit of work that holds them.

The domain (``quotas``, ``moderation``, ``admission``, the job service) is plain Python over
these Protocols; all SQL, locking and migrations live in the backends (``bot.storage.sqlite``,
``bot.storage.postgres``), which behave the same and pass the same contract tests.

A unit of work is one database transaction::

    async with storage.unit() as uow:
        await uow.lock_guild(guild_id)           # serialise with other units on this guild
        row = await uow.guilds.get_or_create(guild_id, defaults, now)
        ...                                      # committed at the end, rolled back on error

Every repository method runs inside its unit's transaction and sees its own writes. Rules
that must not be raced (a balance, a member cap, a USD cap) read and write in one unit after
taking the matching lock: on SQLite a write unit is exclusive anyway (``BEGIN IMMEDIATE``),
on PostgreSQL the lock is a row lock on the guild (``SELECT … FOR UPDATE``) or, for the
bot-wide cap, an advisory transaction lock, so several processes sharing one database keep
every rule.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from bot.models import GenerationRequest, Job, Origin, OriginKind
from bot.storage.records import (
    AuditEntry,
    GuildLists,
    GuildRow,
    LedgerEntry,
    LedgerKind,
    LineSnapshot,
    MemberSpend,
    PeriodTotals,
    ReservationRow,
    ReservationState,
    RoleKind,
    RoleRow,
)


class Role(StrEnum):
    """What a process does with its database, for a backend that allows only one bot at a
    time (SQLite: :mod:`bot.storage.sqlite.lockfile`); PostgreSQL is shared by design."""

    BOT = "bot"  # pikabot run: one per SQLite file
    COMMAND = "command"  # quota, generate, sync: beside the bot, never during a copy
    COPY = "copy"  # migrate-db: alone on the file


class StorageError(Exception):
    """A database that cannot be used, in one sentence for the operator."""


class SchemaTooNew(StorageError):
    """The database was migrated by a newer pikabot than this one."""


class BackupFailed(StorageError):
    """A backup could not be written (one line: where, and why)."""


class BackupUnsupported(StorageError):
    """This backend is backed up with its own tools (PostgreSQL: ``pg_dump``); the message
    says how."""


@dataclass(frozen=True, slots=True)
class Backup:
    """A consistent copy of the database that was written and checked."""

    source: str
    path: Path
    schema_version: int
    size: int

    def line(self) -> str:
        """What was written, in one line."""
        if self.size < 1024 * 1024:
            size = f"{self.size / 1024:.0f} KiB"
        else:
            size = f"{self.size / (1024 * 1024):.1f} MiB"
        return (
            f"backed up {self.source} (schema version {self.schema_version}, {size})"
            f" to {self.path}, checked"
        )


@dataclass(frozen=True, slots=True)
class NewGuild:
    """What a guild never seen before starts with (the operator's defaults)."""

    allowance: int
    period: str


@dataclass(frozen=True, slots=True)
class NewJob:
    """A job to insert, PENDING, with the reservation that pays for it."""

    origin: Origin
    request: GenerationRequest
    provider: str
    cost: int
    reservation_id: int | None
    extra: Mapping[str, str] = field(default_factory=dict)
    lease_owner: str | None = None  # the process that runs it (see JobRepo.claim)
    lease_until: datetime | None = None


class GuildRepo(Protocol):
    """Guild settings, their role/channel/blocklist rules and the audit trail of changes."""

    async def get_or_create(self, guild_id: int, defaults: NewGuild, now: datetime) -> GuildRow:
        """The guild's row, inserted with ``defaults`` the first time it is asked for."""
        ...

    async def lists(self, guild_id: int) -> GuildLists:
        """The guild's role rules (by role id), allowed channels and blocklist (sorted)."""
        ...

    async def update(self, guild_id: int, changes: Mapping[str, object], now: datetime) -> None:
        """Write columns of :data:`~bot.storage.records.GUILD_COLUMNS` (already validated)."""
        ...

    async def set_channel(self, guild_id: int, channel_id: int, *, allowed: bool) -> bool:
        """Add a channel to the allow-list or remove it; False if it already was so."""
        ...

    async def clear_channels(self, guild_id: int) -> list[int]:
        """Empty the allow-list; the channel ids removed, sorted."""
        ...

    async def set_blocked(self, guild_id: int, pattern: str, *, blocked: bool) -> bool:
        """Add a blocklist entry or remove it; False if it already was so."""
        ...

    async def role(self, guild_id: int, role_id: int) -> RoleRow | None:
        """The rule for one role, if any."""
        ...

    async def set_role(
        self, guild_id: int, role_id: int, kind: RoleKind | None, cap: int | None
    ) -> None:
        """Write the role's rule (insert or replace); ``kind=None`` deletes it."""
        ...

    async def add_audit(
        self,
        guild_id: int,
        actor_id: int,
        action: str,
        old: str | None,
        new: str | None,
        reason: str | None,
        now: datetime,
    ) -> int:
        """Record one change; its id."""
        ...

    async def audit_page(
        self, guild_id: int, *, offset: int, limit: int
    ) -> tuple[list[AuditEntry], int]:
        """Audit rows newest first, and how many the guild has in all."""
        ...


class LedgerRepo(Protocol):
    """Credit movements, reservations and each period's running totals, kept in step.

    Every write that moves credits writes its ledger row and updates the period's totals in
    the same unit, in Python-visible code (no trigger does it behind the domain's back).
    """

    async def totals(self, guild_id: int, period_key: str) -> PeriodTotals:
        """The period's running totals (all zero for a period with no rows)."""
        ...

    async def has_movement(self, guild_id: int, period_key: str, kind: LedgerKind) -> bool:
        """Whether the period has a row of ``kind`` (say, its rollover was already carried)."""
        ...

    async def move(
        self,
        guild_id: int,
        period_key: str,
        kind: LedgerKind,
        amount: int,
        *,
        actor_id: int | None,
        reason: str | None,
        now: datetime,
    ) -> int:
        """A moderator's or the period's own movement (grant, reset, adjust, rollover); id."""
        ...

    async def hold(
        self,
        guild_id: int,
        user_id: int,
        period_key: str,
        amount: int,
        usd_micros: int,
        now: datetime,
    ) -> int:
        """Hold credits: a reservation, its ``reserve`` row and the totals; its id."""
        ...

    async def settle(
        self,
        reservation_id: int,
        state: ReservationState,
        *,
        job_id: int | None,
        reason: str,
        now: datetime,
    ) -> ReservationRow | None:
        """End a held reservation (charged or refunded) with its ledger row and totals; the
        reservation as it was, or None (and no change) if it had already ended."""
        ...

    async def reservation(self, reservation_id: int) -> ReservationRow | None:
        """One reservation."""
        ...

    async def member_spent(self, guild_id: int, user_id: int, period_key: str) -> int:
        """Credits the member holds or spent in the period (refunds excluded)."""
        ...

    async def usd_spent(self, since: datetime, until: datetime, guild_id: int | None) -> int:
        """USD millionths held or charged in [since, until), one guild's or the bot's (None)."""
        ...

    async def usage(self, guild_id: int, period_key: str, limit: int) -> list[MemberSpend]:
        """The members who spent most in the period, most first (ties by user id)."""
        ...

    async def page(
        self, guild_id: int, *, offset: int, limit: int
    ) -> tuple[list[LedgerEntry], int]:
        """The guild's ledger rows newest first, and how many it has in all."""
        ...


class JobRepo(Protocol):
    """Job rows: every state change is written before the side effect it enables."""

    async def create(self, job: NewJob, now: datetime) -> Job:
        """Insert a PENDING job; the stored job."""
        ...

    async def get(self, job_id: int) -> Job | None:
        """The job with this id."""
        ...

    async def lock(self, job_id: int) -> Job | None:
        """The job with this id, its row locked until the unit ends, so a decision made on
        its state holds when the unit writes (PostgreSQL: ``FOR UPDATE``: another unit's
        write of the row waits, then sees this one's; SQLite: a write unit is exclusive)."""
        ...

    async def update(self, job_id: int, fields: Mapping[str, Any], now: datetime) -> None:
        """Write ``fields``, named as :class:`~bot.models.Job` attributes (state,
        provider_handle, extra, status_message_id, result_message_id, error, started_at,
        finished_at); stamps ``updated_at``."""
        ...

    async def find_by_message(self, message_id: int) -> Job | None:
        """The newest job whose status or result message has this id."""
        ...

    async def unfinished(self) -> list[Job]:
        """Every job not in a terminal state, oldest first."""
        ...

    async def recent(self, guild_id: int, user_id: int | None, limit: int) -> list[Job]:
        """The guild's (or one member's) latest jobs, newest first."""
        ...

    async def running_count(self, guild_id: int, user_id: int) -> int:
        """The member's jobs not in a terminal state."""
        ...

    async def last_created_at(self, guild_id: int, user_id: int) -> datetime | None:
        """When the member's latest job was created, if ever."""
        ...

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
        until ``until``, oldest first; jobs another unit is claiming are skipped, not waited
        for (PostgreSQL: ``FOR UPDATE SKIP LOCKED``). ``kinds``: only jobs of these origins
        (the front ends the claiming process can show; None: any). ``reclaim``: also the
        jobs still leased to ``owner`` itself (a restarted sole bot's own, see
        :attr:`Storage.sole_bot`)."""
        ...

    async def renew(self, owner: str, job_ids: Sequence[int], until: datetime) -> list[int]:
        """Extend ``owner``'s leases; the ids it still holds (a lost lease is not renewed)."""
        ...

    async def release(self, owner: str, job_ids: Sequence[int]) -> None:
        """Give up ``owner``'s leases on these jobs (they stay unfinished for others)."""
        ...

    async def line(self, now: datetime) -> LineSnapshot:
        """The fair line's facts (:mod:`bot.fair_line`): the waiting jobs (PENDING, no slot
        taken, lease free or live at ``now``: a dead process's jobs rejoin once taken over),
        the jobs holding a slot per guild, and when each waiting guild last took one."""
        ...

    async def take_slots(self, job_ids: Sequence[int], now: datetime) -> None:
        """Mark these jobs as holding a slot from ``now`` (one already holding keeps its)."""
        ...

    async def open_counts(self, guild_id: int) -> tuple[int, int]:
        """Unfinished jobs of the whole bot and of this guild (the line's length bound)."""
        ...


class MetaRepo(Protocol):
    """Small facts about the installation (the synced commands' hash, say)."""

    async def get(self, key: str) -> str | None:
        """The value stored under ``key``."""
        ...

    async def put(self, key: str, value: str) -> None:
        """Store ``value`` under ``key``."""
        ...


class UnitOfWork(Protocol):
    """One transaction and the repositories inside it."""

    @property
    def guilds(self) -> GuildRepo:
        """Guild settings, rules and audit."""
        ...

    @property
    def ledger(self) -> LedgerRepo:
        """Credits."""
        ...

    @property
    def jobs(self) -> JobRepo:
        """Jobs."""
        ...

    @property
    def meta(self) -> MetaRepo:
        """Installation facts."""
        ...

    async def lock_guild(self, guild_id: int) -> None:
        """Serialise this unit with every other unit that locks the same guild, until it ends
        (creating nothing: call before :meth:`GuildRepo.get_or_create`)."""
        ...

    async def lock_bot(self) -> None:
        """Serialise this unit with every other unit that locks the whole bot (the bot-wide
        USD cap), until it ends."""
        ...


class Storage(Protocol):
    """An open database. Open with :func:`bot.storage.open_storage`; close once."""

    @property
    def backend(self) -> str:
        """``sqlite`` or ``postgresql``."""
        ...

    @property
    def location(self) -> str:
        """Where the data is, for logs and ``pikabot check`` (no password)."""
        ...

    @property
    def sole_bot(self) -> bool:
        """True when this process is the only bot the database admits (SQLite opened as
        :attr:`Role.BOT`): a job leased to this bot's owner id is a previous run's, dead."""
        ...

    @property
    def created(self) -> bool:
        """True when opening found no pikabot database there and made a new, empty one (so
        start-up can warn that the ledger starts from nothing)."""
        ...

    def unit(self) -> AbstractAsyncContextManager[UnitOfWork]:
        """A write transaction: committed when the block ends, rolled back on an error."""
        ...

    def read(self) -> AbstractAsyncContextManager[UnitOfWork]:
        """A read-only transaction (one consistent snapshot); writing in it is an error."""
        ...

    async def schema_version(self) -> int:
        """The number of the last migration applied."""
        ...

    async def backup(self, target: Path) -> Backup:
        """Write a consistent copy of the database to the new file ``target`` while it is in
        use (SQLite: the online backup API), checked before it is kept. A backend that has
        its own tools for it raises :class:`BackupUnsupported` saying which (PostgreSQL:
        ``pg_dump``); a copy that cannot be written, :class:`BackupFailed`."""
        ...

    async def ping(self) -> None:
        """One cheap read of the database; raises :class:`StorageError` (or the driver's
        error) when it cannot be reached or read, for the health check."""
        ...

    async def close(self) -> None:
        """Close the connections (a SQLite file is checkpointed first)."""
        ...
