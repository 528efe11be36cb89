"""Benchmark: reservations per second on a shared PostgreSQL database, from 1 and 3 processes
at once against one guild, with the overspend check.

Each process is a real Python process that opens the services as the bot does
(:meth:`bot.services.Services.open` on ``PIKABOT_DATABASE_URL``) and reserves through
:meth:`bot.jobs.JobService.create`, the path ``/pika`` takes (:mod:`bench.reservations_worker`).
The allowance covers 80 % of all attempts, so the last ones must be refused. Afterwards the
ledger is replayed: the balance may never dip below zero and the granted reservations may
never add up to more than the allowance, whatever the processes did at once.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from bench.cluster import postgres_database
from bench.common import Config, Rows
from bot.config import load_settings
from bot.services import Services
from bot.storage.records import LedgerKind

NAME = "shared"
GUILD = 4242
COST = 20


async def _round(url: str, processes: int, workers: int, attempts: int) -> tuple[float, int, str]:
    """One run; (granted reservations per second, overspend, description)."""
    settings = load_settings(
        need_discord=False,
        need_provider=True,
        FAL_KEY="bench-key",
        FAL_QUEUE_URL="http://127.0.0.1:9/",
        PIKABOT_DATABASE_URL=url,
        PIKABOT_LOG_LEVEL="WARNING",
    )
    services = await Services.open(settings)
    attempts_all = processes * workers * attempts
    fundable = attempts_all * 4 // 5
    allowance = fundable * COST
    try:
        await services.moderation.set(GUILD, 0, allowance=allowance)
        children = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.reservations_worker",
                url,
                str(GUILD),
                str(workers),
                str(attempts),
                str(1000 * (p + 1)),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
            for p in range(processes)
        ]
        for child in children:
            assert child.stdout is not None
            async with asyncio.timeout(60):
                while (line := await child.stdout.readline()) and line != b"BENCH ready\n":
                    pass
            assert line, "a worker ended before it was ready"
        started = time.time()
        for child in children:
            assert child.stdin is not None
            child.stdin.write(b"go\n")
            await child.stdin.drain()
        results = []
        for child in children:
            async with asyncio.timeout(120):
                out, _ = await child.communicate()
            (report,) = [ln for ln in out.decode().splitlines() if ln.startswith("BENCH ")]
            results.append(json.loads(report.removeprefix("BENCH ")))
        granted = [cost for r in results for cost in r["granted"]]
        last = max(t for r in results for t in r["at"])
        refused = sum(r["refused"] for r in results)
        async with services.storage.read() as uow:
            entries, _ = await uow.ledger.page(GUILD, offset=0, limit=10_000_000)
        balance, lowest = allowance, allowance
        for entry in reversed(entries):
            if entry.kind is not LedgerKind.ADJUST:  # the allowance set above
                balance += entry.amount
                lowest = min(lowest, balance)
        final = await services.moderation.balance(GUILD)
    finally:
        await services.close()
    spent = sum(granted)
    overspend = max(0, spent - allowance, -lowest, -final.remaining)
    rate = len(granted) / (last - started)
    return (
        rate,
        overspend,
        f"granted {spent} of {allowance} credits ({len(granted)} of {fundable} fundable),"
        f" {refused} refused, lowest balance {lowest}",
    )


async def run(cfg: Config) -> Rows:
    """1 process and 3 processes, each its own fresh database."""
    rows = Rows()
    workers, attempts = (5, 10) if cfg.quick else (20, 40)
    for processes in (1, 3):
        async with postgres_database() as url:
            rate, overspend, detail = await _round(url, processes, workers, attempts)
        label = f"postgresql, {processes} process{'es' if processes > 1 else ''}"
        rows.add(
            NAME,
            f"{label}: reservations/s via JobService.create ({workers} coroutines each)",
            f"{rate:,.0f}/s",
        )
        rows.add(
            NAME, f"{label}: overspend (credits)", f"{overspend} ({detail})", "0", overspend == 0
        )
    return rows
