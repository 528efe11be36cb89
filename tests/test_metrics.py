"""The metrics: a registry per instance (never prometheus-client's global one), and the job
service's hooks moving the right series."""

from __future__ import annotations

from datetime import timedelta

import prometheus_client
from prometheus_client import generate_latest

from bot.metrics import LiveState, Metrics, error_kind
from bot.models import Job, JobState
from bot.providers.errors import RateLimited, TransientError
from bot.storage.records import ReservationRow, ReservationState
from tests.storage.helpers import GUILD, NOW, PERIOD, USER, new_job


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    found = metrics.registry.get_sample_value(name, labels)
    return 0.0 if found is None else found


def row(state: ReservationState, amount: int = 20, usd_micros: int = 200_000) -> ReservationRow:
    return ReservationRow(1, GUILD, USER, PERIOD, amount, usd_micros, state, NOW)


def ended(state: JobState, seconds: float = 42.0) -> Job:
    """A fal job that ended in ``state`` ``seconds`` after it was created."""
    made = new_job()
    return Job(
        id=1,
        origin=made.origin,
        request=made.request,
        provider="fal",
        cost=20,
        reservation_id=1,
        state=state,
        created_at=NOW,
        updated_at=NOW,
        finished_at=NOW + timedelta(seconds=seconds),
    )


def test_metrics_instances_do_not_collide_nor_touch_the_global_registry():
    """Two bots in one process (or many tests) each have their own series."""
    first, second = Metrics(), Metrics()
    first.job_created("fal", 20)
    assert sample(first, "pikabot_jobs_created_total", provider="fal") == 1
    assert sample(second, "pikabot_jobs_created_total", provider="fal") == 0
    assert b"pikabot_" not in generate_latest(prometheus_client.REGISTRY)


def test_metrics_job_ended_counts_credits_and_usd_by_outcome():
    """Charged: credits charged and USD spent; refunded: credits refunded; nothing settled
    (it had ended before): only the job's end and duration."""
    metrics = Metrics()
    metrics.job_ended(ended(JobState.DELIVERED), row(ReservationState.CHARGED))
    metrics.job_ended(ended(JobState.FAILED), row(ReservationState.REFUNDED, amount=15))
    metrics.job_ended(ended(JobState.CANCELLED), None)
    assert sample(metrics, "pikabot_credits_charged_total", provider="fal") == 20
    assert sample(metrics, "pikabot_usd_spent_total", provider="fal") == 0.2
    assert sample(metrics, "pikabot_credits_refunded_total", provider="fal") == 15
    for state in ("delivered", "failed", "cancelled"):
        assert sample(metrics, "pikabot_jobs_ended_total", provider="fal", state=state) == 1
    assert (
        sample(metrics, "pikabot_job_duration_seconds_sum", provider="fal", state="delivered")
        == 42.0
    )


def test_metrics_labels_are_bounded():
    """Error kinds are class names in snake case; an unknown 429 scope is 'unknown'."""
    assert error_kind(RateLimited()) == "rate_limited"
    assert error_kind(TransientError()) == "transient_error"
    metrics = Metrics()
    metrics.discord_429("user")
    metrics.discord_429("something new")
    metrics.discord_429(None)
    assert sample(metrics, "pikabot_discord_rate_limited_total", scope="user") == 1
    assert sample(metrics, "pikabot_discord_rate_limited_total", scope="unknown") == 2


def test_metrics_live_gauges_are_read_at_scrape():
    """The live gauges come from the callable given, at each scrape."""
    metrics = Metrics()
    state = LiveState(
        jobs={("fal", "queued"): 2},
        running=2,
        waiting=3,
        circuits={"fal": "half_open"},
        gateway_connected=True,
        shards_ready=4,
    )
    metrics.read_live(lambda: state)
    assert sample(metrics, "pikabot_jobs", provider="fal", state="queued") == 2
    assert sample(metrics, "pikabot_jobs_waiting") == 3
    assert sample(metrics, "pikabot_provider_circuit", provider="fal", state="half_open") == 1
    assert sample(metrics, "pikabot_provider_circuit", provider="fal", state="open") == 0
    assert sample(metrics, "pikabot_discord_shards_ready") == 4
