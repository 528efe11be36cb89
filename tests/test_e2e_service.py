"""Running pikabot as a service: the HTTP listener (``/healthz``, ``/metrics``) of the real bot
process over a real socket, the Docker health check command against it, and ``pikabot
backup`` while jobs run.

One bot process (SQLite, ``PIKABOT_HTTP_PORT=0``) is shared by the tests of this module, in
file order; the gateway outage comes last. The database outage needs PostgreSQL behind a
proxy the test can cut, so it has a bot of its own.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families

from bot.invite import PERMISSION_BITS
from bot.storage import open_storage, sqlite_url
from bot.storage.sqlite.schema import latest_version
from tests.fakes.bot_process import ROOT
from tests.fakes.discord import APPLICATION_ID, CHANNEL_ID, GUILD_ID
from tests.fakes.stack import FAL_KEY, Stack, description, running_stack
from tests.fakes.tcp_proxy import TcpProxy
from tests.polling import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

PROMPTS = ("a lighthouse keeper 7f3a9 counts gulls", "a doomed kite 41c2e over dunes")
"""Prompts of this module's jobs: never to be seen in /metrics or /healthz."""

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """The real bot with its listener on a free port, shared by this module's tests."""
    folder = tmp_path_factory.mktemp("service")
    async with running_stack(
        folder, PIKABOT_HTTP_PORT="0", PIKABOT_DEFAULT_ALLOWANCE="1000"
    ) as running:
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session:
        yield session


def listening_port(stack: Stack) -> int:
    """The port the bot's listener took (its ``http.listening`` log line)."""
    for line in reversed(stack.bot.log().splitlines()):
        if '"http.listening"' in line:
            return int(json.loads(line)["port"])
    raise AssertionError("the bot logged no http.listening line")


async def get(http: aiohttp.ClientSession, stack: Stack, path: str) -> tuple[int, str]:
    async with http.get(f"http://127.0.0.1:{listening_port(stack)}{path}") as response:
        return response.status, await response.text()


async def healthz(http: aiohttp.ClientSession, stack: Stack) -> tuple[int, dict[str, Any]]:
    status, text = await get(http, stack, "/healthz")
    return status, json.loads(text)


async def metrics(http: aiohttp.ClientSession, stack: Stack) -> Samples:
    status, text = await get(http, stack, "/metrics")
    assert status == 200
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value (0 when it was never set)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples named ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, got), v in samples.items() if n == name and wanted <= got)


async def health_status(http: aiohttp.ClientSession, stack: Stack) -> int:
    status, _ = await get(http, stack, "/healthz")
    return status


def docker_healthcheck() -> list[str]:
    """The Dockerfile's HEALTHCHECK command (exec form), with this interpreter as python."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    line = next(line for line in text.splitlines() if line.startswith("HEALTHCHECK"))
    argv = json.loads(line.split(" CMD ", 1)[1])
    assert argv[0] == "python"
    return [sys.executable, *argv[1:]]


async def run_healthcheck(port: int) -> int:
    process = await asyncio.create_subprocess_exec(
        *docker_healthcheck(),
        env={"PATH": os.environ.get("PATH", ""), "PIKABOT_HTTP_PORT": str(port)},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    async with asyncio.timeout(30):
        return await process.wait()


async def test_e2e_healthz_says_the_bot_serves(stack: Stack, http: aiohttp.ClientSession):
    """A connected bot: 200, its one shard connected and ready, the database read, fal's
    circuit closed, no job running; the start-up log has the invite link. (A shard is
    ready once discord.py has waited for its guilds, shortly after it connected.)"""
    await eventually_async(lambda: health_status(http, stack), 200, within=20)
    status, body = await healthz(http, stack)
    assert status == 200, body
    assert body["status"] == "ok"
    assert body["gateway"]["connected"] is True
    assert body["gateway"]["shards"] == body["gateway"]["shards_ready"] == [0]
    assert body["database"] == {"reachable": True, "backend": "sqlite"}
    assert body["providers"] == {"fal": {"circuit": "closed", "retry_in": 0.0}}
    assert body["jobs"] == {"running": 0, "waiting": 0}
    assert body["problems"] == []
    invite = next(
        json.loads(line) for line in stack.bot.log().splitlines() if '"discord.invite"' in line
    )
    assert invite["url"] == (
        f"https://discord.com/oauth2/authorize?client_id={APPLICATION_ID}"
        f"&permissions={PERMISSION_BITS}&integration_type=0&scope=bot+applications.commands"
    )
    assert await run_healthcheck(listening_port(stack)) == 0


async def test_e2e_metrics_move_when_jobs_run(stack: Stack, http: aiohttp.ClientSession):
    """A delivered job (its status post answered 429 once) and a failed one move the job,
    credit, USD, provider-error, Discord-429, ack, completion and loop-lag metrics."""
    before = await metrics(http, stack)
    stack.discord.fail("POST /channels/{channel_id}/messages", 429, times=1)
    cursor = stack.discord.cursor()
    await stack.pika(prompt=PROMPTS[0])
    await stack.delivered(cursor)
    stack.fal.fail_result(500, "boom", error_type="generation_error")
    cursor = stack.discord.cursor()
    await stack.pika(prompt=PROMPTS[1])
    await stack.discord.wait_for_message(
        lambda m: "could not generate" in description(m),
        channel_id=CHANNEL_ID,
        timeout=20,
        after=cursor,
        kinds=("message_create", "message_update"),
    )
    stack.fal.result_failure = None

    async def ended() -> Samples:
        return await metrics(http, stack)

    after = await ended()
    for _ in range(100):  # the charge commits after the post; bounded wait for both ends
        if (
            total(after, "pikabot_jobs_ended_total") - total(before, "pikabot_jobs_ended_total")
            >= 2
        ):
            break
        await asyncio.sleep(0.1)
        after = await ended()

    def moved(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    assert moved("pikabot_jobs_created_total", provider="fal") == 2
    assert moved("pikabot_jobs_ended_total", provider="fal", state="delivered") == 1
    assert moved("pikabot_jobs_ended_total", provider="fal", state="failed") == 1
    assert moved("pikabot_credits_reserved_total", provider="fal") == 40
    assert moved("pikabot_credits_charged_total", provider="fal") == 20
    assert moved("pikabot_credits_refunded_total", provider="fal") == 20
    assert moved("pikabot_usd_spent_total", provider="fal") == pytest.approx(0.20)
    assert moved("pikabot_job_duration_seconds_count", provider="fal", state="delivered") == 1
    assert moved("pikabot_completion_detection_seconds_count", provider="fal") >= 1
    assert moved("pikabot_provider_errors_total", provider="fal") >= 1
    assert moved("pikabot_discord_rate_limited_total", scope="user") >= 1
    assert moved("pikabot_interaction_ack_seconds_count") >= 2
    assert value(after, "pikabot_event_loop_lag_seconds_count") > 0
    assert value(after, "pikabot_jobs_running") == 0
    assert value(after, "pikabot_provider_circuit", provider="fal", state="closed") == 1
    assert value(after, "pikabot_discord_gateway_connected") == 1
    assert total(after, "pikabot_build_info") == 1


async def test_e2e_nothing_secret_or_prompted_is_served(stack: Stack, http: aiohttp.ClientSession):
    """Neither answer holds the Discord token, the fal key, nor a member's prompt."""
    served = "".join(
        [(await get(http, stack, "/metrics"))[1], (await get(http, stack, "/healthz"))[1]]
    )
    assert stack.discord.token not in served
    assert FAL_KEY not in served
    for prompt in PROMPTS:
        assert prompt not in served
        assert prompt.split()[2] not in served  # not even a word of it
    assert (await get(http, stack, "/"))[0] == 404


async def backup(stack: Stack, target: Path) -> tuple[int, str, str]:
    """``pikabot backup TARGET`` as an operator runs it beside the bot."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "backup",
        str(target),
        cwd=ROOT,
        env={
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": str(ROOT),
            "PIKABOT_DATABASE": str(stack.db),
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def partial_files(folder: Path) -> list[Path]:
    """Temporary files a backup left behind (none, once it ended)."""
    return [*folder.glob("*.partial"), *folder.glob(".*.partial")]


SETTLED = {"delivered": "charged", "failed": "refunded", "cancelled": "refunded"}


def balanced(copy: Path) -> list[str]:
    """Check that a copy is whole and its books add up; the job states in it."""
    with sqlite3.connect(copy) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        totals = db.execute(
            "SELECT guild_id, period_key, net, reserved, spent FROM period_totals"
        ).fetchall()
        assert totals
        for guild_id, key, net, reserved, spent in totals:
            where = (guild_id, key)
            ledger = db.execute(
                "SELECT COALESCE(SUM(amount), 0) FROM ledger WHERE guild_id = ? AND period_key = ?",
                where,
            ).fetchone()[0]
            held, charged = (
                db.execute(
                    "SELECT COALESCE(SUM(amount), 0) FROM reservations"
                    " WHERE guild_id = ? AND period_key = ? AND state = ?",
                    (*where, state),
                ).fetchone()[0]
                for state in ("held", "charged")
            )
            assert (net, reserved, spent) == (ledger, held, charged)
        jobs = db.execute(
            "SELECT j.state, r.state FROM jobs j JOIN reservations r ON r.id = j.reservation_id"
        ).fetchall()
        for job_state, reservation_state in jobs:
            assert reservation_state == SETTLED.get(job_state, "held"), jobs
        return [state for state, _ in jobs]


async def test_e2e_backup_while_jobs_run_opens_and_balances(stack: Stack, tmp_path: Path):
    """Copies taken while three jobs are at fal, and after they are posted, are whole
    databases whose ledger, period totals, reservations and jobs agree; a copy opens as a
    pikabot database at the current schema."""
    stack.fal.queue_positions = tuple(range(30, 0, -1))
    stack.fal.stream_interval = 0.1
    cursor = stack.discord.cursor()
    for n in range(3):
        await stack.pika(prompt=f"a running job {n}")
    await eventually(lambda: stack.job_states().count("queued"), 3, within=20)

    code, out, err = await backup(stack, tmp_path)  # a folder: the copy is named in it
    assert code == 0, err
    made = Path(out.split(" to ")[1].split(", checked")[0])
    assert made.parent == tmp_path
    assert re.fullmatch(rf"pikabot-{latest_version()}-\d{{8}}T\d{{6}}Z\.sqlite3", made.name)
    during = balanced(made)
    assert during.count("queued") + during.count("generating") >= 3

    for _ in range(3):
        await stack.delivered(cursor, timeout=60)
        cursor = stack.discord.cursor() - 1
    await eventually(lambda: stack.job_states()[-3:], ["delivered"] * 3, within=20)
    final = tmp_path / "after.sqlite3"
    code, out, err = await backup(stack, final)
    assert code == 0, err
    assert out.startswith(f"pikabot: backed up {stack.db} (schema version {latest_version()}")
    assert balanced(final)[-3:] == ["delivered"] * 3
    assert partial_files(tmp_path) == []

    code, _, err = await backup(stack, final)  # never over an existing file
    assert code == 1 and "already exists" in err and len(err.strip().splitlines()) == 1

    opened = await open_storage(sqlite_url(final))
    try:
        assert await opened.schema_version() == latest_version()
        async with opened.read() as uow:
            assert await uow.jobs.recent(GUILD_ID, None, 10)
    finally:
        await opened.close()
    stack.fal.queue_positions = (2, 1)
    stack.fal.stream_interval = 0.05


async def test_e2e_health_is_503_while_the_gateway_is_down(
    stack: Stack, http: aiohttp.ClientSession
):
    """Discord drops the gateway and refuses it: /healthz answers 503 saying so, and the
    Docker health check fails; once Discord is back the bot reconnects and it is 200 again."""
    port = listening_port(stack)
    await stack.discord.gateway.drop()
    try:
        await eventually_async(lambda: health_status(http, stack), 503, within=20)
        status, body = await healthz(http, stack)
        assert status == 503
        assert body["status"] == "unavailable"
        assert body["gateway"]["connected"] is False
        assert body["database"]["reachable"] is True
        assert any("gateway" in problem for problem in body["problems"]), body
        assert await run_healthcheck(port) == 1
        assert value(await metrics(http, stack), "pikabot_discord_gateway_connected") == 0
    finally:
        stack.discord.gateway.restore()
    await eventually_async(lambda: health_status(http, stack), 200, within=90)
    assert await run_healthcheck(port) == 0


async def eventually_async(read: Any, expected: object, *, within: float) -> None:
    """Poll the coroutine function ``read`` until it gives ``expected`` (bounded)."""
    last = None
    for _ in range(int(within / 0.1)):
        last = await read()
        if last == expected:
            return
        await asyncio.sleep(0.1)
    assert last == expected, f"after {within} s still {last!r}, expected {expected!r}"


@pytest.mark.asyncio(loop_scope="function")
async def test_e2e_health_is_503_while_the_database_is_unreachable(
    tmp_path: Path, postgres_url: str
):
    """A bot on PostgreSQL behind a cut connection: /healthz answers 503 naming the
    database (never its password), and 200 again once the server can be reached."""
    parts = urlsplit(postgres_url)
    assert parts.hostname is not None and parts.port is not None
    async with TcpProxy(parts.hostname, parts.port) as proxy:
        netloc = parts.netloc.rsplit(":", 1)[0] + f":{proxy.port}"
        proxied = parts._replace(netloc=netloc).geturl()
        async with (
            running_stack(tmp_path, PIKABOT_HTTP_PORT="0", PIKABOT_DATABASE_URL=proxied) as bot,
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session,
        ):
            await eventually_async(lambda: health_status(session, bot), 200, within=20)
            _, body = await healthz(session, bot)
            assert body["database"] == {"reachable": True, "backend": "postgresql"}
            await proxy.cut()
            await eventually_async(lambda: health_status(session, bot), 503, within=30)
            status, body = await healthz(session, bot)
            assert status == 503
            assert body["database"]["reachable"] is False
            assert "cannot reach" in body["database"]["error"], body
            assert body["gateway"]["connected"] is True
            if parts.password:
                assert parts.password not in json.dumps(body)
            await proxy.restore()
            await eventually_async(lambda: health_status(session, bot), 200, within=30)
