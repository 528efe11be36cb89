"""Benchmark 7: the storage boundary's write path on its own: ``unit()`` + ``hold()`` + job
``create()`` per second (the transaction ``/pika`` reserves in, without the domain's rules).

Runs on SQLite (a real file in WAL mode); with ``PIKABOT_BENCH_POSTGRES_URL`` set, on that
(empty) PostgreSQL database too. Informational: no target. Afterwards the totals are checked
against the holds (every credit held once, every hold with its job).
"""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime

from bench.common import Config, Rows
from bot.models import GenerationRequest, Origin
from bot.storage import Storage, open_storage, sqlite_url
from bot.storage.base import NewGuild, NewJob

NAME = "storage"
GUILD = 4242
PERIOD = "2026-03-14"
DEFAULTS = NewGuild(allowance=1_000_000_000, period="daily")
REQUEST = GenerationRequest(prompt="a benchmark clip", seed=1)


async def _one(storage: Storage, user_id: int) -> None:
    now = datetime.now(UTC)
    async with storage.unit() as uow:
        await uow.lock_guild(GUILD)
        await uow.guilds.get_or_create(GUILD, DEFAULTS, now)
        await uow.ledger.totals(GUILD, PERIOD)
        rid = await uow.ledger.hold(GUILD, user_id, PERIOD, 20, 100_000, now)
        await uow.jobs.create(NewJob(Origin(GUILD, 1, user_id), REQUEST, "fal", 20, rid), now)


async def _measure(storage: Storage, workers: int, each: int) -> float:
    async def worker(index: int) -> None:
        for _ in range(each):
            await _one(storage, 1000 + index)

    started = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(workers)))
    return workers * each / (time.perf_counter() - started)


async def _reads(storage: Storage, count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        async with storage.read() as uow:
            await uow.ledger.totals(GUILD, PERIOD)
    return count / (time.perf_counter() - started)


async def run(cfg: Config) -> Rows:
    """Units per second, one coroutine and many, on each configured backend."""
    rows = Rows()
    each = 50 if cfg.quick else 400
    urls = {"sqlite": sqlite_url(cfg.workdir / "storage.sqlite3")}
    if os.environ.get("PIKABOT_BENCH_POSTGRES_URL"):
        urls["postgresql"] = os.environ["PIKABOT_BENCH_POSTGRES_URL"]
    for backend, url in urls.items():
        storage = await open_storage(url)
        try:
            await _measure(storage, 1, 10)  # warm up: the guild row exists from here on
            alone = await _measure(storage, 1, each)
            crowd = await _measure(storage, 50, each // 10)
            reads = await _reads(storage, each)
            async with storage.read() as uow:
                totals = await uow.ledger.totals(GUILD, PERIOD)
                jobs = len(await uow.jobs.unfinished())
        finally:
            await storage.close()
        holds = 10 + each + 50 * (each // 10)
        rows.add(NAME, f"{backend}: unit+hold+job create/s, 1 coroutine", f"{alone:,.0f}/s")
        rows.add(NAME, f"{backend}: unit+hold+job create/s, 50 coroutines", f"{crowd:,.0f}/s")
        rows.add(NAME, f"{backend}: read() snapshots/s (totals)", f"{reads:,.0f}/s")
        rows.add(
            NAME,
            f"{backend}: held credits and jobs match the holds",
            f"{totals.reserved} credits, {jobs} jobs for {holds} holds",
            f"{holds * 20} credits, {holds} jobs",
            totals.reserved == holds * 20 and jobs == holds and totals.net == -holds * 20,
        )
    return rows
