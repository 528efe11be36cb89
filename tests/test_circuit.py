"""The circuit breaker: opens after repeated outages, lets a probe through after cool-down."""

from __future__ import annotations

from bot.circuit import CircuitBreaker


def test_circuit_opens_after_threshold_and_closes_on_success():
    """Closed until the threshold of consecutive outages; success closes it again."""
    now = [0.0]
    breaker = CircuitBreaker(threshold=3, cooldown=60, clock=lambda: now[0])
    breaker.record_outage()
    breaker.record_outage()
    assert not breaker.is_open
    breaker.record_outage()
    assert breaker.is_open and breaker.retry_in() == 60
    now[0] = 61
    assert not breaker.is_open  # half-open: one probe may go
    breaker.record_success()
    breaker.record_outage()
    assert not breaker.is_open


def test_circuit_success_resets_the_count():
    """Outages separated by a success never open the circuit."""
    breaker = CircuitBreaker(threshold=2, cooldown=60)
    for _ in range(5):
        breaker.record_outage()
        breaker.record_success()
    assert not breaker.is_open
