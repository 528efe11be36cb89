"""The circuit breaker: opens after repeated outages, lets one probe through after cool-down."""

from __future__ import annotations

from bot.circuit import CircuitBreaker


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_circuit_opens_after_threshold_and_closes_on_success():
    """Closed until the threshold of consecutive outages; success closes it again."""
    clock = Clock()
    breaker = CircuitBreaker(threshold=3, cooldown=60, clock=clock)
    breaker.record_outage()
    breaker.record_outage()
    assert not breaker.is_open and breaker.allow()
    breaker.record_outage()
    assert breaker.is_open and breaker.retry_in() == 60 and not breaker.allow()
    clock.now = 61
    assert not breaker.is_open  # half-open: one probe may go
    assert breaker.allow()
    breaker.record_success()
    breaker.record_outage()
    assert not breaker.is_open and breaker.allow()


def test_circuit_half_open_lets_exactly_one_probe_through():
    """After the cool-down one request goes; the rest are refused until it reports."""
    clock = Clock()
    breaker = CircuitBreaker(threshold=2, cooldown=60, clock=clock)
    breaker.record_outage()
    breaker.record_outage()
    clock.now = 60
    granted = [breaker.allow() for _ in range(10)]
    assert granted == [True] + [False] * 9
    assert breaker.is_open and breaker.retry_in() == 60
    clock.now = 90
    assert not breaker.allow()  # the probe is still out
    breaker.record_success()  # the probe got through: closed for everyone
    assert [breaker.allow() for _ in range(3)] == [True, True, True]


def test_circuit_failed_probe_opens_for_a_new_cool_down():
    """A probe's outage opens the circuit again at once, for a whole new cool-down."""
    clock = Clock()
    breaker = CircuitBreaker(threshold=2, cooldown=60, clock=clock)
    breaker.record_outage()
    breaker.record_outage()
    clock.now = 60
    assert breaker.allow()
    clock.now = 70
    breaker.record_outage()
    assert breaker.retry_in() == 60 and not breaker.allow()
    clock.now = 129
    assert not breaker.allow()
    clock.now = 130
    assert breaker.allow() and not breaker.allow()


def test_circuit_a_probe_that_never_reports_is_given_up_after_a_cool_down():
    """A probe refused before reaching the provider must not keep the circuit shut forever."""
    clock = Clock()
    breaker = CircuitBreaker(threshold=1, cooldown=60, clock=clock)
    breaker.record_outage()
    clock.now = 60
    assert breaker.allow()
    clock.now = 119
    assert not breaker.allow()
    clock.now = 120
    assert breaker.allow() and not breaker.allow()


def test_circuit_success_resets_the_count():
    """Outages separated by a success never open the circuit."""
    breaker = CircuitBreaker(threshold=2, cooldown=60)
    for _ in range(5):
        breaker.record_outage()
        breaker.record_success()
    assert not breaker.is_open
