"""What the bot does, as Prometheus metrics: one :class:`Metrics` per process, in a registry
of its own (never prometheus-client's global one, so tests and several bots in one process
do not collide).

The job service calls the hooks (:meth:`Metrics.job_created`, :meth:`Metrics.job_ended`,
:meth:`Metrics.provider_error`, :meth:`Metrics.completion_detected`); the composition root
feeds what only it sees (Discord's 429s, interaction acks) and the live state read at each
scrape (:meth:`Metrics.read_live`: jobs by state, the line, circuits, the gateway).

No label ever holds a secret, a prompt, a URL or an id: only provider names, job states,
error kinds and rate-limit scopes, each from a small fixed set.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bot import __version__
from bot.models import Job
from bot.storage.records import ReservationRow, ReservationState

JOB_SECONDS = (5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600, 1200, 2400, 3600)
"""Buckets of a job's life, from ``/pika`` to posted (or failed): seconds to an hour."""
DETECTION_SECONDS = (0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30)
ACK_SECONDS = (0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 2.5, 3, 5)
"""Discord fails an interaction not answered within 3 s: the buckets crowd below that."""
LAG_SECONDS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
LAG_EVERY = 0.5
"""Seconds between two event-loop lag samples."""
RATE_LIMIT_SCOPES = frozenset({"user", "global", "shared"})
"""Discord's ``X-RateLimit-Scope`` values; anything else is counted as ``unknown``."""


@dataclass(frozen=True, slots=True)
class LiveState:
    """What the bot is doing right now, read at each scrape."""

    jobs: Mapping[tuple[str, str], int] = field(default_factory=dict)
    """Jobs this process runs, by (provider, state)."""
    running: int = 0
    waiting: int = 0
    circuits: Mapping[str, str] = field(default_factory=dict)
    """Each provider's circuit: ``closed``, ``open`` or ``half_open``."""
    gateway_connected: bool | None = None
    """None: not a Discord bot (or not started)."""
    shards_ready: int = 0


CIRCUIT_STATES = ("closed", "open", "half_open")


def error_kind(error: BaseException) -> str:
    """``RateLimited`` → ``rate_limited``: the error's class as a label value."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(error).__name__).lower()


class _Live(Collector):
    """Gauges computed from :class:`LiveState` when Prometheus scrapes."""

    def __init__(self) -> None:
        self.read: Callable[[], LiveState] = LiveState

    def collect(self) -> Iterable[Metric]:
        live = self.read()
        jobs = GaugeMetricFamily(
            "pikabot_jobs", "Jobs this process runs now, by provider and state.",
            labels=["provider", "state"],
        )  # fmt: skip
        for (provider, state), count in sorted(live.jobs.items()):
            jobs.add_metric([provider, state], count)
        yield jobs
        yield GaugeMetricFamily(
            "pikabot_jobs_running", "Jobs holding a slot (sent to a provider or about to be).",
            value=live.running,
        )  # fmt: skip
        yield GaugeMetricFamily(
            "pikabot_jobs_waiting", "Jobs waiting in the bot's own line for a slot.",
            value=live.waiting,
        )  # fmt: skip
        circuits = GaugeMetricFamily(
            "pikabot_provider_circuit",
            "1 for each provider's circuit breaker state (closed, open, half_open).",
            labels=["provider", "state"],
        )
        for provider, current in sorted(live.circuits.items()):
            for state in CIRCUIT_STATES:
                circuits.add_metric([provider, state], 1 if state == current else 0)
        yield circuits
        if live.gateway_connected is not None:
            yield GaugeMetricFamily(
                "pikabot_discord_gateway_connected",
                "1 while every shard of this process has its gateway connection open.",
                value=1 if live.gateway_connected else 0,
            )
            yield GaugeMetricFamily(
                "pikabot_discord_shards_ready", "Shards of this process that are ready.",
                value=live.shards_ready,
            )  # fmt: skip


class Metrics:
    """pikabot's metrics in their own :class:`~prometheus_client.CollectorRegistry`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        info = Gauge(
            "pikabot_build_info", "Always 1; the version is a label.", ["version"], registry=r
        )
        info.labels(__version__).set(1)
        self.jobs_created = Counter(
            "pikabot_jobs_created", "Jobs accepted (credits reserved).", ["provider"], registry=r
        )
        self.jobs_ended = Counter(
            "pikabot_jobs_ended",
            "Jobs that reached a final state (delivered, failed, cancelled).",
            ["provider", "state"],
            registry=r,
        )
        self.job_duration = Histogram(
            "pikabot_job_duration_seconds",
            "From the job's creation to its final state (its wait in line included).",
            ["provider", "state"],
            buckets=JOB_SECONDS,
            registry=r,
        )
        self.completion_detection = Histogram(
            "pikabot_completion_detection_seconds",
            "Between the last provider status that was not done and the one that was: how"
            " late, at most, a finished clip was noticed (polling interval, stream events).",
            ["provider"],
            buckets=DETECTION_SECONDS,
            registry=r,
        )
        self.credits_reserved = Counter(
            "pikabot_credits_reserved", "Credits held for new jobs.", ["provider"], registry=r
        )
        self.credits_charged = Counter(
            "pikabot_credits_charged", "Credits charged for delivered clips.", ["provider"],
            registry=r,
        )  # fmt: skip
        self.credits_refunded = Counter(
            "pikabot_credits_refunded", "Credits given back for jobs that failed or were"
            " cancelled.", ["provider"], registry=r,
        )  # fmt: skip
        self.usd_spent = Counter(
            "pikabot_usd_spent",
            "The providers' price in USD of the clips charged (from their price tables).",
            ["provider"],
            registry=r,
        )
        self.provider_errors = Counter(
            "pikabot_provider_errors",
            "Errors the providers answered with, by kind (rate_limited, transient_error, ...).",
            ["provider", "kind"],
            registry=r,
        )
        self.discord_rate_limited = Counter(
            "pikabot_discord_rate_limited",
            "HTTP 429 answers from Discord (discord.py waits and retries them), by scope.",
            ["scope"],
            registry=r,
        )
        self.ack_latency = Histogram(
            "pikabot_interaction_ack_seconds",
            "From an interaction's arrival to Discord accepting its first answer.",
            buckets=ACK_SECONDS,
            registry=r,
        )
        self.loop_lag = Histogram(
            "pikabot_event_loop_lag_seconds",
            f"How much later than asked a {LAG_EVERY} s sleep of the event loop woke up.",
            buckets=LAG_SECONDS,
            registry=r,
        )
        self._live = _Live()
        r.register(self._live)

    def read_live(self, read: Callable[[], LiveState]) -> None:
        """Where the scrape-time gauges come from (the composition root sets it)."""
        self._live.read = read

    # -- hooks of the job service ----------------------------------------------------------

    def job_created(self, provider: str, credits: int) -> None:
        """A job was accepted and its credits reserved (after the unit committed)."""
        self.jobs_created.labels(provider).inc()
        self.credits_reserved.labels(provider).inc(credits)

    def job_ended(self, job: Job, settled: ReservationRow | None) -> None:
        """``job`` reached its final state; ``settled``: its reservation as it ended there
        (None: it had ended before, or the job had none)."""
        state = job.state.value
        self.jobs_ended.labels(job.provider, state).inc()
        if job.finished_at is not None:
            seconds = (job.finished_at - job.created_at).total_seconds()
            self.job_duration.labels(job.provider, state).observe(max(seconds, 0.0))
        if settled is None:
            return
        if settled.state is ReservationState.CHARGED:
            self.credits_charged.labels(job.provider).inc(settled.amount)
            self.usd_spent.labels(job.provider).inc(settled.usd_micros / 1_000_000)
        elif settled.state is ReservationState.REFUNDED:
            self.credits_refunded.labels(job.provider).inc(settled.amount)

    def provider_error(self, provider: str, error: BaseException) -> None:
        """A provider call failed with ``error`` (retried or not)."""
        self.provider_errors.labels(provider, error_kind(error)).inc()

    def completion_detected(self, provider: str, seconds: float) -> None:
        """A finished clip was seen ``seconds`` after the last status that was not done."""
        self.completion_detection.labels(provider).observe(max(seconds, 0.0))

    # -- fed by the composition root -------------------------------------------------------

    def discord_429(self, scope: str | None) -> None:
        """Discord answered 429 (``scope``: its ``X-RateLimit-Scope`` header)."""
        self.discord_rate_limited.labels(scope if scope in RATE_LIMIT_SCOPES else "unknown").inc()

    def interaction_acked(self, seconds: float) -> None:
        """An interaction's first answer was accepted ``seconds`` after it arrived."""
        self.ack_latency.observe(max(seconds, 0.0))

    async def sample_loop_lag(self, every: float = LAG_EVERY) -> None:
        """Until cancelled: sleep ``every`` seconds and record how late the loop woke up."""
        loop = asyncio.get_running_loop()
        while True:
            asked = loop.time()
            await asyncio.sleep(every)
            self.loop_lag.observe(max(loop.time() - asked - every, 0.0))

    def start_loop_lag(self) -> asyncio.Task[None]:
        """:meth:`sample_loop_lag` as a background task (cancel it to stop)."""
        return asyncio.create_task(self.sample_loop_lag(), name="metrics-loop-lag")


async def stop(task: asyncio.Task[None] | None) -> None:
    """Cancel a sampling task and wait for it."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
