"""Connection failures in an operator's words, whatever aiohttp class carried them."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
import pytest
from aiohttp.client_reqrep import ConnectionKey

from bot.reach import unreachable_reason
from bot.startup import describe, discord_unreachable

KEY = ConnectionKey("discord.com", 443, True, True, None, None, None)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (
            aiohttp.ClientConnectorDNSError(KEY, socket.gaierror(-2, "Name or service not known")),
            "its name does not resolve (DNS)",
        ),
        (
            aiohttp.ClientConnectorError(KEY, ConnectionRefusedError(111, "Connection refused")),
            "the connection was refused",
        ),
        (TimeoutError(), "it did not answer in time"),
        (aiohttp.ServerDisconnectedError(), "the connection was dropped"),
    ],
)
def test_unreachable_reason_in_words(exc: BaseException, expected: str):
    """DNS, refused, time-out and dropped connections each get their plain sentence."""
    assert unreachable_reason(exc) == expected


def test_discord_dns_failure_names_discord_not_the_class():
    """The start-up line for a DNS failure says Discord cannot be reached and why."""
    exc = aiohttp.ClientConnectorDNSError(KEY, socket.gaierror(-3, "Temporary failure"))
    line = describe(discord_unreachable("discord.com", exc))
    assert line.startswith("cannot reach Discord at discord.com: its name does not resolve (DNS)")
    assert "ClientConnector" not in line and "DEBUG" not in line


async def test_refused_loopback_connection_is_refused():
    """A real refused connection on 127.0.0.1 (nothing listens) reads as refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientError) as raised:
            async with asyncio.timeout(10):
                await session.get(f"http://127.0.0.1:{port}/")
    assert unreachable_reason(raised.value) == "the connection was refused"
