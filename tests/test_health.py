"""The health model: the verdict from the gateway (as the composition root reports it), the
database (a real SQLite file) and the job service's circuits, and the live metrics it feeds."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from bot.config import Period
from bot.health import DEGRADED, OK, UNAVAILABLE, GatewayStatus, Health
from bot.jobs import JobService
from bot.providers.fal import FalProvider
from bot.quotas import Quotas
from bot.storage import Storage, open_storage, sqlite_url
from tests.fakes.fal import FakeFal

UP = GatewayStatus(shard_ids=(0, 1), connected=(0, 1), ready=(0, 1), latency=0.042)


@dataclass
class Parts:
    storage: Storage
    jobs: JobService


@pytest.fixture
async def parts(tmp_path: Path, session: aiohttp.ClientSession) -> AsyncIterator[Parts]:
    async with FakeFal() as fal:
        storage = await open_storage(sqlite_url(tmp_path / "pikabot.sqlite3"))
        jobs = JobService(
            storage=storage,
            quotas=Quotas(default_allowance=100, default_period=Period.DAILY),
            provider=FalProvider(session, api_key=fal.key, base_url=fal.url),
            session=session,
            credits_per_usd=100,
        )
        try:
            yield Parts(storage, jobs)
        finally:
            await jobs.close()
            await storage.close()


def health(parts: Parts, gateway: GatewayStatus | None = UP) -> Health:
    return Health(parts.storage, parts.jobs, gateway=None if gateway is None else lambda: gateway)


async def test_health_serving_bot_is_ok(parts: Parts):
    """Every shard connected and ready, the database read, circuits closed: ok, serving."""
    report = await health(parts).check()
    assert (report.status, report.serving, report.problems) == (OK, True, [])
    body = report.to_json()
    assert body["gateway"] == {
        "connected": True,
        "shards": [0, 1],
        "shards_connected": [0, 1],
        "shards_ready": [0, 1],
        "latency_ms": 42,
    }
    assert body["database"] == {"reachable": True, "backend": "sqlite"}
    assert body["providers"] == {"fal": {"circuit": "closed", "retry_in": 0.0}}


@pytest.mark.parametrize(
    ("gateway", "problem"),
    [
        (GatewayStatus(), "the Discord gateway is not connected yet"),
        (
            GatewayStatus(shard_ids=(0, 1), connected=(0,), ready=(0,)),
            "the Discord gateway is not connected (shards 1)",
        ),
        (
            GatewayStatus(shard_ids=(0, 1), connected=(0, 1), ready=(1,)),
            "Discord shards 0 are not ready",
        ),
    ],
)
async def test_health_gateway_down_cannot_serve(parts: Parts, gateway: GatewayStatus, problem: str):
    """A shard not connected or not ready: unavailable, saying which."""
    report = await health(parts, gateway).check()
    assert (report.status, report.serving, report.problems) == (UNAVAILABLE, False, [problem])


async def test_health_open_circuit_is_degraded_but_serving(parts: Parts):
    """A provider that keeps failing opens its circuit: degraded, still 200 (the bot answers
    members, and a restart would not help)."""
    breaker = parts.jobs.breakers["fal"]
    for _ in range(breaker.threshold):
        breaker.record_outage()
    report = await health(parts).check()
    assert (report.status, report.serving) == (DEGRADED, True)
    assert report.problems == ["circuit breaker not closed for fal"]
    assert report.circuits["fal"]["circuit"] == "open"
    assert health(parts).live().circuits == {"fal": "open"}


async def test_health_unreadable_database_cannot_serve(parts: Parts):
    """A database that cannot be read: unavailable, with the reason."""
    await parts.storage.close()
    report = await health(parts).check()
    assert (report.status, report.serving, report.database_reachable) == (UNAVAILABLE, False, False)
    assert report.problems[0].startswith("the database cannot be read: ")


async def test_health_without_a_gateway_judges_the_rest(parts: Parts):
    """No Discord here (None): the gateway is no part of the verdict or the live state."""
    checker = health(parts, None)
    assert (await checker.check()).status == OK
    live = checker.live()
    assert (live.gateway_connected, live.running, live.waiting, dict(live.jobs)) == (
        None,
        0,
        0,
        {},
    )
