"""A circuit breaker per provider: after repeated outages, stop sending new jobs for a while.

While open, new requests are refused at once (no credit reserved) with a clear message,
instead of each one reserving, waiting on a dead service and being refunded minutes later.
After ``cooldown`` seconds one request is let through (half-open); its success closes the
circuit, its failure opens it again.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class CircuitBreaker:
    """Counts consecutive provider outages; opens after ``threshold`` of them."""

    def __init__(
        self,
        *,
        threshold: int = 5,
        cooldown: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None

    @property
    def is_open(self) -> bool:
        """True while new jobs should be refused (False once the cool-down allows a probe)."""
        if self._opened_at is None:
            return False
        return self._clock() - self._opened_at < self.cooldown

    def retry_in(self) -> float:
        """Seconds until a probe is allowed (0 when closed)."""
        if self._opened_at is None:
            return 0.0
        return max(0.0, self.cooldown - (self._clock() - self._opened_at))

    def record_success(self) -> None:
        """The provider answered properly: close the circuit."""
        self._failures = 0
        self._opened_at = None

    def record_outage(self) -> None:
        """The provider was unreachable or failing on its side (5xx, timeouts, 429 storms)."""
        self._failures += 1
        if self._failures >= self.threshold:
            self._opened_at = self._clock()
