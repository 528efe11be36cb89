"""Each provider's loopback fake with the settings that point ``pikabot`` at it.

Used by the subprocess tests that run the real CLI or bot with ``PIKA_PROVIDER`` set to each
provider in turn. The fakes are tuned to finish quickly while keeping each provider's real
pace: AIgateway and Pixazo are polled at their documented intervals (3 s, 2.5 s), so their
fakes complete on the second poll; 1min.ai's fake holds its call longer than the provider's
2 s accept window, so the job takes the "pending" path a real generation takes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.fakes.aigateway import FakeAIGateway
from tests.fakes.fal import FakeFal
from tests.fakes.onemin import FakeOneMin
from tests.fakes.pixazo import FakePixazo


@dataclass(frozen=True)
class ProviderSetup:
    """One provider: its ``PIKA_PROVIDER`` name, its settings' names and how to make its fake."""

    name: str
    key_env: str
    url_env: str
    make: Callable[[], Any]
    """A fresh, not yet started fake (an async context manager with ``url`` and ``key``)."""

    def env(self, fake: Any, *, key: str | None = None) -> dict[str, str]:
        """The settings selecting this provider, its key and its base URL (the fake's)."""
        return {
            "PIKA_PROVIDER": self.name,
            self.key_env: fake.key if key is None else key,
            self.url_env: fake.url,
        }


SETUPS: dict[str, ProviderSetup] = {
    "fal": ProviderSetup(
        "fal", "FAL_KEY", "FAL_QUEUE_URL", lambda: FakeFal(key="fal-e2e-key", stream_interval=0.05)
    ),
    "aigateway": ProviderSetup(
        "aigateway",
        "AIGATEWAY_API_KEY",
        "AIGATEWAY_BASE_URL",
        lambda: FakeAIGateway(key="aig-e2e-key", polls_before_done=1),
    ),
    "onemin": ProviderSetup(
        "onemin",
        "ONEMIN_API_KEY",
        "ONEMIN_BASE_URL",
        lambda: FakeOneMin(key="onemin-e2e-key", block_seconds=2.5),
    ),
    "pixazo": ProviderSetup(
        "pixazo",
        "PIXAZO_API_KEY",
        "PIXAZO_BASE_URL",
        lambda: FakePixazo(key="pixazo-e2e-key", polls_before_done=1),
    ),
}
"""Every provider, by ``PIKA_PROVIDER`` name."""
