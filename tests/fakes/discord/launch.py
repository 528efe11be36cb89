"""Run the real bot against a ``DiscordDouble`` without touching production code.

Usage (test-only)::

    python -m tests.fakes.discord.launch http://127.0.0.1:PORT/api/v10 -- <bot cli args...>

It sets ``discord.http.Route.BASE`` to the double's REST base and
``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY`` to ``ws://127.0.0.1:PORT/gateway``
(a non-sharded discord.py client never asks ``GET /gateway/bot``: it connects straight to
``wss://gateway.discord.gg``), then calls ``bot.cli.main(argv)`` and exits with its result.
``DiscordDouble.launch_argv(...)`` builds this command line. Log in with the double's token.

In-process tests use ``pointed_at(double)`` instead, which patches and restores the same two
attributes.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import sys
from collections.abc import Iterator
from typing import Any

import yarl


def gateway_for(rest_base: str) -> str:
    """The double's gateway URL for its REST base (same host and port, path ``/gateway``)."""
    url = yarl.URL(rest_base)
    scheme = "wss" if url.scheme == "https" else "ws"
    return str(url.with_scheme(scheme).with_path("/gateway"))


def point_discord_at(rest_base: str) -> tuple[str, Any]:
    """Patch discord.py to use the double; returns the previous (Route.BASE, DEFAULT_GATEWAY)."""
    import discord.gateway
    import discord.http

    previous = (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)
    discord.http.Route.BASE = rest_base.rstrip("/")
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_for(rest_base))
    return previous


@contextlib.contextmanager
def pointed_at(double: Any) -> Iterator[None]:
    """Point discord.py (in this process) at ``double`` (a ``DiscordDouble`` or a REST base
    URL) for the duration of the ``with`` block, then restore the real endpoints."""
    import discord.gateway
    import discord.http

    base = double if isinstance(double, str) else double.rest_base
    old_base, old_gateway = point_discord_at(base)
    try:
        yield
    finally:
        discord.http.Route.BASE = old_base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_gateway


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``launch <rest_base> -- <cli args...>``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0].startswith("-"):
        print(__doc__, file=sys.stderr)
        return 2
    rest_base, rest = args[0], args[1:]
    if rest and rest[0] == "--":
        rest = rest[1:]
    point_discord_at(rest_base)
    from bot.cli import main as cli_main

    result = cli_main(rest)
    if inspect.iscoroutine(result):
        result = asyncio.run(result)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
