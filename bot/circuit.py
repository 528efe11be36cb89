"""A circuit breaker per provider: after repeated outages, stop sending new jobs for a while.

While open, new requests are refused at once (no credit reserved) with a clear message,
instead of each one reserving, waiting on a dead service and being refunded minutes later.
After ``cooldown`` seconds exactly one request is let through (half-open): its success closes
the circuit, its failure opens it again for another ``cooldown``. Requests arriving while
that probe is out are refused like those of an open circuit. A probe that never reports
(refused by a quota after being let through, say) is given up after another ``cooldown``, and
the next request becomes the probe.
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
        self._probe_at: float | None = None  # when the half-open probe was let through

    @property
    def is_open(self) -> bool:
        """True while a new request would be refused (open, or its one probe is out)."""
        return self.retry_in() > 0

    @property
    def state(self) -> str:
        """``closed``, ``open`` (requests refused) or ``half_open`` (one probe may go, or is
        out), for the health check and the metrics."""
        if self._opened_at is None:
            return "closed"
        if self._probe_at is None and self.retry_in() > 0:
            return "open"
        return "half_open"

    def retry_in(self) -> float:
        """Seconds until a request may go (0 when closed or when a probe may go now)."""
        if self._opened_at is None:
            return 0.0
        since = self._probe_at if self._probe_at is not None else self._opened_at
        return max(0.0, self.cooldown - (self._clock() - since))

    def allow(self) -> bool:
        """May a new request go to the provider? Closed: yes. Open: no, except the one probe.

        Unlike :attr:`is_open` this claims what it grants: once the cool-down is over, the
        first caller is the probe and later callers are refused until it reports.
        """
        if self._opened_at is None:
            return True
        if self.retry_in() > 0:
            return False
        self._probe_at = self._clock()
        return True

    def record_success(self) -> None:
        """The provider answered properly: close the circuit."""
        self._failures = 0
        self._opened_at = None
        self._probe_at = None

    def record_outage(self) -> None:
        """The provider was unreachable or failing on its side (5xx, timeouts, 429 storms).

        A failed probe (or any outage once open) opens the circuit for a new cool-down.
        """
        self._failures += 1
        if self._failures >= self.threshold or self._opened_at is not None:
            self._opened_at = self._clock()
            self._probe_at = None
