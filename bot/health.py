"""Whether the bot can serve, as ``GET /healthz`` answers it (and the live metrics read it).

The core cannot see Discord: the composition root hands :class:`Health` a callable that
says how the gateway is (:class:`GatewayStatus`). The rest is read here: the database by one
cheap read (bounded by :data:`DATABASE_TIMEOUT`), the providers' circuit breakers and the
job line from the job service.

The bot *cannot serve* (503) while the gateway is not connected, a shard of this process is
not ready, or the database cannot be read: commands would not arrive or could not be
answered. An open circuit breaker is *degraded* (200): the bot still answers, saying the video
service is down (or sends to the fallback), and a restart would not help.

Nothing in a report is a secret or a prompt: counts, states, provider names, and a database
failure in the storage's own words (which never hold a password), redacted once more.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from bot import __version__
from bot.jobs import JobService
from bot.metrics import LiveState
from bot.redact import redact_text
from bot.storage import Storage, StorageError

DATABASE_TIMEOUT = 3.0
"""Seconds the database may take to answer the health check's read."""

OK = "ok"
DEGRADED = "degraded"
UNAVAILABLE = "unavailable"


@dataclass(frozen=True, slots=True)
class GatewayStatus:
    """This process's Discord connection, as the composition root sees it."""

    shard_ids: tuple[int, ...] = ()
    """The shards this process runs (empty: not known yet, before the first connection)."""
    connected: tuple[int, ...] = ()
    """Of those, the shards whose gateway socket is open."""
    ready: tuple[int, ...] = ()
    """Of those, the shards that are ready (identified or resumed, guilds received)."""
    latency: float | None = None
    """Seconds between a heartbeat and its acknowledgement (the mean over the shards)."""

    @property
    def up(self) -> bool:
        """Every shard of this process connected and ready."""
        shards = set(self.shard_ids)
        return bool(shards) and shards <= set(self.connected) and shards <= set(self.ready)


NO_GATEWAY = GatewayStatus()


@dataclass(frozen=True, slots=True)
class HealthReport:
    """One answer of the health check."""

    status: str
    gateway: GatewayStatus
    database_reachable: bool
    database_backend: str
    database_error: str | None
    circuits: dict[str, dict[str, Any]]
    running: int
    waiting: int
    problems: list[str] = field(default_factory=list)

    @property
    def serving(self) -> bool:
        """False when the bot cannot serve (``GET /healthz`` answers 503)."""
        return self.status != UNAVAILABLE

    def to_json(self) -> dict[str, Any]:
        """The report as ``GET /healthz`` returns it."""
        gateway = self.gateway
        database: dict[str, Any] = {
            "reachable": self.database_reachable,
            "backend": self.database_backend,
        }
        if self.database_error:
            database["error"] = self.database_error
        return {
            "status": self.status,
            "version": __version__,
            "gateway": {
                "connected": gateway.up,
                "shards": list(gateway.shard_ids),
                "shards_connected": list(gateway.connected),
                "shards_ready": list(gateway.ready),
                "latency_ms": None if gateway.latency is None else round(gateway.latency * 1000),
            },
            "database": database,
            "providers": self.circuits,
            "jobs": {"running": self.running, "waiting": self.waiting},
            "problems": self.problems,
        }


class Health:
    """Answers "can the bot serve?" from the gateway, the database and the job service."""

    def __init__(
        self,
        storage: Storage,
        jobs: JobService,
        *,
        gateway: Callable[[], GatewayStatus] | None = None,
        secrets: Iterable[str] = (),
    ) -> None:
        """``gateway``: how the Discord connection is (None: no Discord here, e.g. a test of
        the core; the gateway is then not part of the verdict)."""
        self._storage = storage
        self._jobs = jobs
        self._gateway = gateway
        self._secrets = [s for s in secrets if s]

    def gateway(self) -> GatewayStatus:
        """The gateway as the composition root reports it (:data:`NO_GATEWAY` if none)."""
        return self._gateway() if self._gateway is not None else NO_GATEWAY

    def live(self) -> LiveState:
        """What the bot is doing now, for the scrape-time metrics (no database read)."""
        jobs: dict[tuple[str, str], int] = {}
        for job in self._jobs.active_jobs():
            key = (job.provider, job.state.value)
            jobs[key] = jobs.get(key, 0) + 1
        gateway = self.gateway() if self._gateway is not None else None
        return LiveState(
            jobs=jobs,
            running=self._jobs.scheduler.running,
            waiting=self._jobs.scheduler.waiting,
            circuits={name: b.state for name, b in self._jobs.breakers.items()},
            gateway_connected=None if gateway is None else gateway.up,
            shards_ready=0 if gateway is None else len(gateway.ready),
        )

    async def check(self) -> HealthReport:
        """Read everything once; the verdict and the details."""
        problems: list[str] = []
        gateway = self.gateway()
        if self._gateway is not None and not gateway.up:
            problems.append(_gateway_problem(gateway))
        error = await self._database_error()
        if error is not None:
            problems.append(f"the database cannot be read: {error}")
        circuits = {
            name: {"circuit": breaker.state, "retry_in": round(breaker.retry_in(), 1)}
            for name, breaker in self._jobs.breakers.items()
        }
        open_circuits = sorted(n for n, c in circuits.items() if c["circuit"] != "closed")
        status = UNAVAILABLE if problems else DEGRADED if open_circuits else OK
        if open_circuits:
            problems.append(f"circuit breaker not closed for {', '.join(open_circuits)}")
        return HealthReport(
            status=status,
            gateway=gateway,
            database_reachable=error is None,
            database_backend=self._storage.backend,
            database_error=error,
            circuits=circuits,
            running=self._jobs.scheduler.running,
            waiting=self._jobs.scheduler.waiting,
            problems=problems,
        )

    async def _database_error(self) -> str | None:
        """None if the database answered a read in time, else why not (one line)."""
        try:
            async with asyncio.timeout(DATABASE_TIMEOUT):
                await self._storage.ping()
        except TimeoutError:
            return f"no answer within {DATABASE_TIMEOUT:g} s"
        except StorageError as failed:
            return redact_text(" ".join(str(failed).split())[:300], self._secrets)
        except Exception as failed:  # the driver's own (a dropped connection, a locked file)
            return type(failed).__name__
        return None


def _gateway_problem(gateway: GatewayStatus) -> str:
    if not gateway.shard_ids:
        return "the Discord gateway is not connected yet"
    down = sorted(set(gateway.shard_ids) - set(gateway.connected))
    if down:
        return f"the Discord gateway is not connected (shards {_ids(down)})"
    waiting = sorted(set(gateway.shard_ids) - set(gateway.ready))
    return f"Discord shards {_ids(waiting)} are not ready"


def _ids(ids: list[int]) -> str:
    return ", ".join(str(i) for i in ids)
