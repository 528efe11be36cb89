"""``pikabot migrate-db --to postgresql://…``: a SQLite database built by the real services is
copied by the real CLI process into an empty PostgreSQL database, and everything matches."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest

from bot.config import Period
from bot.models import Job, JobState, OriginKind
from bot.moderation import Moderation
from bot.pricing import Quote
from bot.quotas import Balance, Quotas
from bot.storage import Storage, open_storage, sqlite_url
from bot.storage.base import NewGuild, Role
from bot.storage.records import AuditEntry, GuildLists, GuildRow, LedgerEntry, ReservationRow
from bot.storage.sqlite.moved import DatabaseMoved
from bot.storage.versions import MIGRATED_BY
from tests.storage.helpers import new_job
from tests.test_cli import pikabot
from tests.units import Credits, audit_rows, ledger_rows

NOW = datetime(2026, 3, 14, 12, 0, 0, tzinfo=UTC)
"""The instant every row is written at and every balance is read at (no test reads the clock)."""

BIG = 1_234_567_890_123_456_789  # a real-sized snowflake
SMALL = 42
GUILDS = (BIG, SMALL)
MODERATOR = 555
USERS = (987_654_321_098_765_432, 7)
DEFAULTS = NewGuild(allowance=100, period="daily")


def quotas() -> Quotas:
    """The domain with the CLI's defaults and a frozen clock."""
    return Quotas(default_allowance=100, default_period=Period.DAILY, clock=lambda: NOW)


@dataclass
class Snapshot:
    """Everything a guild's users and moderators can see, read through the repositories."""

    balances: dict[int, Balance] = field(default_factory=dict)
    guilds: dict[int, GuildRow] = field(default_factory=dict)
    lists: dict[int, GuildLists] = field(default_factory=dict)
    ledger: dict[int, list[LedgerEntry]] = field(default_factory=dict)
    audit: dict[int, list[AuditEntry]] = field(default_factory=dict)
    reservations: dict[int, ReservationRow | None] = field(default_factory=dict)
    jobs: dict[int, Job | None] = field(default_factory=dict)
    unfinished: list[int] = field(default_factory=list)
    meta: str | None = None


async def snapshot(storage: Storage, job_ids: list[int], reservation_ids: list[int]) -> Snapshot:
    """Read every guild's state, and the given jobs and reservations."""
    seen = Snapshot()
    credits = Credits(storage, quotas())
    for guild in GUILDS:
        seen.balances[guild] = await credits.balance(guild)
        seen.ledger[guild] = await ledger_rows(storage, guild)
        seen.audit[guild] = await audit_rows(storage, guild)
    async with storage.read() as uow:
        for guild in GUILDS:
            seen.guilds[guild] = await uow.guilds.get_or_create(guild, DEFAULTS, NOW)
            seen.lists[guild] = await uow.guilds.lists(guild)
        for job_id in job_ids:
            seen.jobs[job_id] = await uow.jobs.get(job_id)
        for reservation_id in reservation_ids:
            seen.reservations[reservation_id] = await uow.ledger.reservation(reservation_id)
        seen.unfinished = [job.id for job in await uow.jobs.unfinished()]
        seen.meta = await uow.meta.get("commands_hash")
    return seen


async def build(path: Path) -> tuple[list[int], list[int]]:
    """A realistic database: rules and their audit, grants, reservations held, charged and
    refunded, jobs in several states (one a terminal job), meta. The jobs' and reservations'
    ids."""
    storage = await open_storage(sqlite_url(path))
    try:
        domain = quotas()
        moderation = Moderation(storage, domain)
        credits = Credits(storage, domain)
        await moderation.set(BIG, MODERATOR, allowance=300, rollover=True, reason="launch")
        await moderation.grant(BIG, MODERATOR, 50, "event")
        await moderation.member_cap(BIG, MODERATOR, credits=80, role_id=11, role_credits=200)
        await moderation.member_cap(BIG, MODERATOR, exempt_role_id=12)
        await moderation.channel(BIG, MODERATOR, 77, allowed=True)
        await moderation.blocklist(BIG, MODERATOR, "gore", blocked=True)
        await moderation.blocklist(BIG, MODERATOR, "re:^spam+$", blocked=True)
        await moderation.cooldown(SMALL, MODERATOR, 30)
        await moderation.grant(SMALL, MODERATOR, 5, "sorry")
        plan = [  # guild, user, credits, how it ends, the job's state
            (BIG, USERS[0], 20, "charge", JobState.DELIVERED),
            (BIG, USERS[1], 15, "refund", JobState.FAILED),
            (BIG, USERS[0], 10, "hold", JobState.QUEUED),
            (SMALL, USERS[1], 25, "hold", JobState.PENDING),
            (SMALL, USERS[1], 5, "refund", JobState.CANCELLED),
            (BIG, USERS[1], 30, "hold", JobState.GENERATING),
        ]
        job_ids, reservation_ids = [], []
        for number, (guild, user, amount, end, state) in enumerate(plan):
            held = await credits.reserve(guild, user, Quote(amount, Decimal("0.25")))
            kind = OriginKind.TERMINAL if number == 3 else OriginKind.DISCORD
            async with storage.unit() as uow:
                job = await uow.jobs.create(
                    new_job(guild, user, cost=amount, reservation_id=held.id, kind=kind), NOW
                )
                fields: dict[str, object] = {"state": state, "status_message_id": 900 + number}
                if state is not JobState.PENDING:
                    fields["provider_handle"] = {"request_id": f"req-{number}", "model": "2.2"}
                    fields["extra"] = {"out": f"/clips/{number}.mp4", "rerun_of": "3"}
                    fields["started_at"] = NOW
                if state.terminal:
                    fields["finished_at"] = NOW
                if state is JobState.DELIVERED:
                    fields["result_message_id"] = 1000 + number
                if state is JobState.FAILED:
                    fields["error"] = "the provider refused the prompt"
                await uow.jobs.update(job.id, fields, NOW)
            if end == "charge":
                await credits.charge(held.id, job_id=job.id)
            elif end == "refund":
                await credits.refund(held.id, job_id=job.id, reason="failed")
            job_ids.append(job.id)
            reservation_ids.append(held.id)
        async with storage.unit() as uow:
            await uow.meta.put("commands_hash", "abc123")
    finally:
        await storage.close()
    return job_ids, reservation_ids


async def read(url: str, job_ids: list[int], reservation_ids: list[int]) -> Snapshot:
    """:func:`snapshot` of the database at ``url``."""
    storage = await open_storage(url)
    try:
        return await snapshot(storage, job_ids, reservation_ids)
    finally:
        await storage.close()


async def test_migrate_db_copies_every_credit_rule_and_job(
    tmp_path: Path, postgres_url: str
) -> None:
    db = tmp_path / "pikabot.sqlite3"
    job_ids, reservation_ids = await build(db)
    before = await read(sqlite_url(db), job_ids, reservation_ids)
    assert before.balances[BIG].remaining == 300 + 50 - 20 - 10 - 30  # held and charged count
    env = {"PIKABOT_DATABASE": str(db)}
    shown_before = await pikabot("quota", "show", str(BIG), env=env, cwd=tmp_path, at=NOW)

    code, out, err = await pikabot("migrate-db", "--to", postgres_url, env=env, cwd=tmp_path)

    assert (code, err) == (0, ""), err
    lines = out.strip().splitlines()
    assert lines[0].startswith(
        "pikabot: copied 2 guilds, 12 ledger rows, 6 reservations (3 held), 6 jobs, 9 audit rows"
    )
    assert "verified" in lines[0]
    after = await read(postgres_url, job_ids, reservation_ids)
    assert after == before
    assert sorted(after.unfinished) == sorted(job_ids[2:4] + job_ids[5:6])
    job = after.jobs[job_ids[2]]
    assert job is not None and job.provider_handle == {"request_id": "req-2", "model": "2.2"}
    # A bot on the migrated database sees the same balances, at the same instant.
    pg_env = {"PIKABOT_DATABASE_URL": postgres_url}
    shown_after = await pikabot("quota", "show", str(BIG), env=pg_env, cwd=tmp_path, at=NOW)
    assert shown_after[:2] == shown_before[:2]  # exit code and stdout (logs differ)
    assert shown_after[0] == 0
    assert "remaining 290 of 300" in shown_after[1], shown_after[1]
    # New rows get ids past the copied ones (the identities were moved on).
    storage = await open_storage(postgres_url)
    try:
        fresh = await Credits(storage, quotas()).reserve(BIG, USERS[0], Quote(1, Decimal(0)))
        async with storage.unit() as uow:
            job = await uow.jobs.create(new_job(BIG, USERS[0], reservation_id=fresh.id), NOW)
            audit_id = await uow.guilds.add_audit(BIG, 0, "test", None, None, None, NOW)
    finally:
        await storage.close()
    assert fresh.id == max(reservation_ids) + 1
    assert job.id == max(job_ids) + 1
    assert audit_id == max(e.id for e in before.audit[BIG] + before.audit[SMALL]) + 1


async def test_migrate_db_refuses_a_target_that_holds_data(
    tmp_path: Path, postgres_url: str
) -> None:
    db = tmp_path / "pikabot.sqlite3"
    job_ids, reservation_ids = await build(db)
    env = {"PIKABOT_DATABASE": str(db)}
    assert (await pikabot("migrate-db", "--to", postgres_url, env=env, cwd=tmp_path))[0] == 0
    copied = await read(postgres_url, job_ids, reservation_ids)
    other = tmp_path / "other" / "pikabot.sqlite3"  # another bot's file, into the same target
    await build(other)

    code, out, err = await pikabot(
        "migrate-db", "--to", postgres_url, env={"PIKABOT_DATABASE": str(other)}, cwd=tmp_path
    )

    assert (code, out) == (2, "")
    assert err.startswith("pikabot: nothing copied: ")
    assert "already holds data (2 guilds" in err
    assert len(err.strip().splitlines()) == 1
    assert await read(postgres_url, job_ids, reservation_ids) == copied


async def test_a_copied_file_is_refused_to_the_bot_commands_and_a_second_copy(
    tmp_path: Path, postgres_url: str
) -> None:
    """After the move, a bot or command started on the old file by mistake is refused with one
    line naming where the data went (never the password), so nobody spends a stale balance."""
    db = tmp_path / "pikabot.sqlite3"
    await build(db)
    env = {"PIKABOT_DATABASE": str(db)}
    assert (await pikabot("migrate-db", "--to", postgres_url, env=env, cwd=tmp_path))[0] == 0
    where = postgres_url.rsplit("/", 1)[1]

    for command in (("quota", "show", str(BIG)), ("migrate-db", "--to", postgres_url)):
        code, out, err = await pikabot(*command, env=env, cwd=tmp_path)
        assert code != 0 and out == "", (command, out)
        assert len(err.strip().splitlines()) == 1, err
        assert "copied to" in err and where in err and "PIKABOT_DATABASE_URL" in err, err
    with pytest.raises(DatabaseMoved):
        await open_storage(sqlite_url(db), role=Role.BOT)
    storage = await open_storage(sqlite_url(db))  # still readable as the backup it is
    await storage.close()


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("mysql://root:hunter22@127.0.0.1/db", "--to must be a PostgreSQL URL"),
        ("postgresql://bob:hunter22@127.0.0.1:notaport/db", "the PostgreSQL URL is malformed"),
    ],
)
async def test_migrate_db_refuses_a_bad_url(tmp_path: Path, target: str, expected: str) -> None:
    db = tmp_path / "pikabot.sqlite3"
    await build(db)
    code, out, err = await pikabot(
        "migrate-db", "--to", target, env={"PIKABOT_DATABASE": str(db)}, cwd=tmp_path
    )
    assert (code, out) == (2, "")
    assert expected in err
    assert len(err.strip().splitlines()) == 1
    assert "hunter22" not in err


async def test_migrate_db_refuses_a_missing_source(tmp_path: Path, postgres_url: str) -> None:
    db = tmp_path / "nowhere.sqlite3"
    code, _, err = await pikabot(
        "migrate-db", "--to", postgres_url, env={"PIKABOT_DATABASE": str(db)}, cwd=tmp_path
    )
    assert code == 2
    assert f"there is no SQLite database at {db}" in err
    assert not db.exists()  # not created by looking for it


async def test_migrate_db_failure_never_shows_the_password(tmp_path: Path) -> None:
    db = tmp_path / "pikabot.sqlite3"
    await build(db)
    closed = "postgresql://bob:s3cr%40t-pw@127.0.0.1:9/pikabot"  # port 9: nobody listens
    code, out, err = await pikabot(
        "migrate-db", "--to", closed, env={"PIKABOT_DATABASE": str(db)}, cwd=tmp_path
    )
    assert (code, out) == (1, "")
    assert err.startswith("pikabot: migrate-db failed: cannot reach the PostgreSQL server of")
    assert "bob@127.0.0.1:9" in err
    assert "s3cr" not in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("trigger", "expected"),
    [
        (  # the target changes a total on the way in
            "BEGIN NEW.net := NEW.net + 1; RETURN NEW; END",
            "the period totals differ: SQLite has (42, '2026-03-14', -20, 5, 0, 0, 25, 0)"
            " where PostgreSQL has (42, '2026-03-14', -19, 5, 0, 0, 25, 0)",
        ),
        (  # the target drops a row on the way in
            "BEGIN IF NEW.guild_id = 42 THEN RETURN NULL; END IF; RETURN NEW; END",
            "table period_totals has 2 rows in SQLite but 1 were written",
        ),
    ],
)
async def test_migrate_db_rolls_back_what_does_not_match(
    tmp_path: Path, postgres_url: str, trigger: str, expected: str
) -> None:
    db = tmp_path / "pikabot.sqlite3"
    await build(db)
    storage = await open_storage(postgres_url)  # the schema, and a trigger that corrupts
    await storage.close()
    connection = await asyncpg.connect(postgres_url)
    try:
        await connection.execute(
            f"CREATE FUNCTION corrupt() RETURNS trigger LANGUAGE plpgsql AS $$ {trigger} $$;"
            " CREATE TRIGGER corrupt BEFORE INSERT ON period_totals"
            " FOR EACH ROW EXECUTE FUNCTION corrupt()"
        )
    finally:
        await connection.close()

    code, out, err = await pikabot(
        "migrate-db", "--to", postgres_url, env={"PIKABOT_DATABASE": str(db)}, cwd=tmp_path
    )

    assert (code, out) == (1, "")
    assert err.startswith("pikabot: migrate-db failed: "), err
    assert expected in err
    assert "nothing was kept" in err
    connection = await asyncpg.connect(postgres_url)
    try:
        for table in ("guilds", "ledger", "reservations", "jobs", "audit"):
            assert await connection.fetchval(f"SELECT COUNT(*) FROM {table}") == 0, table
        # meta keeps only what migrating the target wrote: the pikabot version that did it
        assert await connection.fetchval("SELECT key FROM meta") == MIGRATED_BY
    finally:
        await connection.close()


async def test_migrate_db_needs_a_sqlite_source(tmp_path: Path, postgres_url: str) -> None:
    code, out, err = await pikabot(
        "migrate-db", "--to", postgres_url, env={"PIKABOT_DATABASE_URL": postgres_url}, cwd=tmp_path
    )
    assert (code, out) == (2, "")
    assert "migrate-db copies a SQLite database, but PIKABOT_DATABASE_URL names another" in err
