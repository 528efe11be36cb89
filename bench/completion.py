"""Benchmark 2: completion detection per provider, and status requests per job.

Each provider client (the bot's own, in this process) follows jobs on its loopback fake. The
fakes run in *timed* mode (their additive ``ready_after`` knob, or 1min.ai's ``done_at``
record): a job turns done at a known ``time.monotonic()`` moment, drawn at random per job so
it falls anywhere between two polls. The figure is the delay from that moment to the moment
the client's ``watch`` yields COMPLETED with the result in hand (for fal this includes the
result fetch). Polling intervals are the bot's defaults: fal's fallback
``PIKABOT_POLL_INTERVAL`` 2 s, AIgateway 3 s, Pixazo 2.5 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bench.common import FAL_KEY, Config, Rows, median, percentile, secs
from bot.models import GenerationRequest, PikaModel
from bot.providers.aigateway import AIGatewayProvider
from bot.providers.base import ProviderHandle, StatusKind
from bot.providers.fal import FalProvider
from bot.providers.onemin import OneMinProvider
from bot.providers.pixazo import PixazoProvider
from tests.fakes.aigateway import FakeAIGateway
from tests.fakes.fal import FakeFal
from tests.fakes.onemin import FakeOneMin
from tests.fakes.pixazo import FakePixazo

NAME = "completion"
FAL_STREAM_MEDIAN = 0.25
STATUS_GAP = 2.0  # at most one status request per 2 s per job
# No counted steps: a job is done exactly at its ready_at moment, never later.
TIMED_FAL: dict[str, Any] = {"queue_positions": (), "progress_logs": (), "ready_after": 1.0}
TIMED_POLLED: dict[str, Any] = {"polls_before_done": 0, "ready_after": 1.0}


@dataclass(slots=True)
class Case:
    """One provider set-up: how to build the fake and the client, and read the fake back."""

    label: str
    fake: Any
    client: Any
    done_at: Callable[[ProviderHandle, str], float]
    status_paths: Callable[[ProviderHandle], list[float]]
    set_duration: Callable[[float], None]
    interval: float
    streamed: bool = False
    latencies: list[float] = field(default_factory=list)
    gaps: list[float] = field(default_factory=list)
    per_job: list[int] = field(default_factory=list)


def _request(client: Any) -> GenerationRequest:
    models = client.capabilities.models
    model = PikaModel.V2_2 if PikaModel.V2_2 in models else sorted(models)[0]
    return GenerationRequest(prompt="a benchmark clip", model=model, seed=7)


@contextlib.asynccontextmanager
async def _cases(session: aiohttp.ClientSession) -> AsyncIterator[list[Case]]:
    async with (
        FakeFal(key=FAL_KEY, stream_interval=1.0, **TIMED_FAL) as fal_stream,
        FakeFal(key=FAL_KEY, stream_enabled=False, **TIMED_FAL) as fal_poll,
        FakeAIGateway(key="aig-bench", min_poll_interval=3.0, **TIMED_POLLED) as aig,
        FakePixazo(key="px-bench", **TIMED_POLLED) as px,
        FakeOneMin(key="om-bench", block_seconds=1.0) as om,
    ):

        def fal_done(fake: FakeFal) -> Callable[[ProviderHandle, str], float]:
            return lambda handle, _url: fake.jobs[handle.request_id].ready_at or 0.0

        def fal_status(fake: FakeFal) -> Callable[[ProviderHandle], list[float]]:
            return lambda h: [
                r.time for r in fake.recorded("status") if r.request_id == h.request_id
            ]

        def path_status(fake: Any) -> Callable[[ProviderHandle], list[float]]:
            return lambda h: [r.time for r in fake.recorded("status") if h.request_id in r.path]

        def setter(fake: Any, attr: str) -> Callable[[float], None]:
            return lambda seconds: setattr(fake, attr, seconds)

        def onemin_done(_handle: ProviderHandle, url: str) -> float:
            record = url.split("/videos/", 1)[1].split(".mp4", 1)[0]
            return om.done_at[record]

        fal_client = FalProvider(session, api_key=FAL_KEY, base_url=fal_stream.url)
        fal_poller = FalProvider(session, api_key=FAL_KEY, base_url=fal_poll.url, poll_interval=2.0)
        aig_client = AIGatewayProvider(session, api_key="aig-bench", base_url=aig.url)
        px_client = PixazoProvider(session, api_key="px-bench", base_url=px.url)
        # A short accept window only shortens our sequential submits; watch is unchanged.
        om_client = OneMinProvider(session, api_key="om-bench", base_url=om.url, accept_window=0.1)
        yield [
            Case(
                "fal (status stream)",
                fal_stream,
                fal_client,
                fal_done(fal_stream),
                fal_status(fal_stream),
                setter(fal_stream, "ready_after"),
                fal_client.poll_interval,
                streamed=True,
            ),
            Case(
                "fal (polling fallback)",
                fal_poll,
                fal_poller,
                fal_done(fal_poll),
                fal_status(fal_poll),
                setter(fal_poll, "ready_after"),
                fal_poller.poll_interval,
            ),
            Case(
                "aigateway (polling)",
                aig,
                aig_client,
                lambda h, _u: aig.jobs[h.request_id].ready_at or 0.0,
                path_status(aig),
                setter(aig, "ready_after"),
                aig_client.poll_interval,
            ),
            Case(
                "pixazo (polling)",
                px,
                px_client,
                lambda h, _u: px.jobs[h.request_id].ready_at or 0.0,
                path_status(px),
                setter(px, "ready_after"),
                px_client.poll_interval,
            ),
            Case(
                "onemin (blocking call)",
                om,
                om_client,
                onemin_done,
                lambda _h: [],
                setter(om, "block_seconds"),
                0.0,
            ),
        ]


async def _follow(case: Case, handle: ProviderHandle) -> None:
    async for status in case.client.watch(handle):
        if status.kind is StatusKind.COMPLETED and status.result is not None:
            seen = time.monotonic()
            done = case.done_at(handle, status.result.video_url)
            case.latencies.append(seen - done)
            polls = sorted(case.status_paths(handle))
            case.per_job.append(len(polls))
            case.gaps.extend(b - a for a, b in itertools.pairwise(polls))
            return


async def _run_case(case: Case, jobs: int, spread: tuple[float, float], rng: random.Random) -> None:
    tasks = []
    for _ in range(jobs):
        case.set_duration(rng.uniform(*spread))  # read by the fake when the submit arrives
        handle = await case.client.submit(_request(case.client))
        tasks.append(asyncio.create_task(_follow(case, handle)))
    await asyncio.gather(*tasks)


async def run(cfg: Config) -> Rows:
    """Follow jobs on every provider (concurrently, one task per job) and report the delays."""
    rows = Rows()
    jobs = 6 if cfg.quick else 100
    spread = (0.5, 3.0) if cfg.quick else (1.0, 7.0)
    rng = random.Random(6)
    async with aiohttp.ClientSession() as session, _cases(session) as cases:
        await asyncio.gather(*(_run_case(case, jobs, spread, rng) for case in cases))
    for case in cases:
        lat = case.latencies
        med, p95 = median(lat), percentile(lat, 95)
        if case.streamed:
            target, met = f"median <= {FAL_STREAM_MEDIAN} s", med <= FAL_STREAM_MEDIAN
        elif case.interval:
            half = case.interval / 2
            target, met = f"median <= {half:g} s (interval/2)", med <= half
        else:
            target, met = "", None
        figure = f"{case.label}: done -> result, median (n={len(lat)})"
        rows.add(NAME, figure, secs(med), target, met)
        rows.add(NAME, f"{case.label}: done -> result, p95", secs(p95))
        if case.streamed:
            streams = case.fake.count("stream")
            polls = case.fake.count("status")
            rows.add(
                NAME,
                f"{case.label}: requests per job",
                f"{streams / len(lat):.2f} stream + {polls / len(lat):.2f} status",
            )
        elif case.interval:
            gap = min(case.gaps) if case.gaps else float("nan")
            rows.add(
                NAME,
                f"{case.label}: status requests per job (mean)",
                f"{sum(case.per_job) / len(case.per_job):.2f}",
            )
            rows.add(
                NAME,
                f"{case.label}: shortest gap between a job's status requests",
                secs(gap),
                f">= {STATUS_GAP:g} s",
                gap >= STATUS_GAP,
            )
        else:
            rows.add(NAME, f"{case.label}: status requests per job", "0 (one held call)")
    rows.notes.append(
        f"completion: {jobs} jobs per provider, each done {spread[0]:g}-{spread[1]:g} s after"
        " its submit (uniform), followed concurrently."
    )
    return rows
