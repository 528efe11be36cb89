"""The optional HTTP listener (``PIKABOT_HTTP_PORT``): ``GET /healthz`` and ``GET /metrics``.

Off unless a port is set; it listens on ``PIKABOT_HTTP_HOST`` (127.0.0.1 unless told
otherwise, so nothing is exposed by accident). ``/healthz`` is the :class:`~bot.health.Health`
report as JSON, 200 while the bot can serve and 503 when it cannot; ``/metrics`` is the
:class:`~bot.metrics.Metrics` registry in Prometheus' text format (prometheus-client's own
aiohttp handler). Nothing else is served, and neither answer holds a secret or a prompt.
"""

from __future__ import annotations

import errno

import structlog
from aiohttp import web
from prometheus_client.aiohttp import make_aiohttp_handler

from bot.health import Health
from bot.metrics import Metrics
from bot.startup import StartupFailure

log = structlog.get_logger(__name__)

SHUTDOWN_SECONDS = 2.0
"""How long a request in flight may take when the listener stops."""


class ListenerFailed(StartupFailure):
    """The listener could not be opened (the port is taken, say); ``str()`` says so."""


class HttpListener:
    """One aiohttp site serving the health check and the metrics, started and stopped once."""

    def __init__(self, health: Health, metrics: Metrics, *, host: str, port: int) -> None:
        """``port`` 0 takes any free port (logged, and :attr:`port` once started)."""
        self._health = health
        self._host = host
        self._port = port
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", make_aiohttp_handler(metrics.registry))
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_SECONDS)
        self.port: int | None = None

    async def start(self) -> None:
        """Listen; raises :class:`ListenerFailed` (one line, naming the setting) when it cannot."""
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        try:
            await site.start()
        except OSError as failed:
            await self._runner.cleanup()
            raise ListenerFailed(_why(self._host, self._port, failed)) from None
        address = self._runner.addresses[0]
        self.port = int(address[1])
        log.info("http.listening", host=self._host, port=self.port, paths=["/healthz", "/metrics"])

    async def stop(self) -> None:
        """Stop listening (requests in flight get :data:`SHUTDOWN_SECONDS`)."""
        await self._runner.cleanup()

    async def _healthz(self, _request: web.Request) -> web.Response:
        report = await self._health.check()
        if not report.serving:
            log.warning("health.unavailable", problems=report.problems)
        return web.json_response(report.to_json(), status=200 if report.serving else 503)


def _why(host: str, port: int, failed: OSError) -> str:
    where = f"cannot listen on {host}:{port} (PIKABOT_HTTP_HOST, PIKABOT_HTTP_PORT)"
    if failed.errno == errno.EADDRINUSE:
        return f"{where}: the port is already in use; pick another PIKABOT_HTTP_PORT"
    if failed.errno == errno.EACCES:
        return f"{where}: permission denied (ports below 1024 need privileges)"
    if failed.errno == errno.EADDRNOTAVAIL:
        return f"{where}: this machine has no such address; use 127.0.0.1 or 0.0.0.0"
    return f"{where}: {failed.strerror or type(failed).__name__}"
