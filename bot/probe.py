"""Looking at the first bytes of a remote file without downloading it, and at where a URL a
member typed would take the bot.

Images (:mod:`bot.images`) and videos (:mod:`bot.videos`) are told apart by their first
bytes, never by their name or declared type; both read them here with one ranged GET.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
import structlog

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Head:
    """The first bytes of a remote file, and its whole size where the server said."""

    data: bytes
    total: int | None


class ProbeFailed(Exception):
    """The file could not be read: ``status`` is the HTTP status (None: no answer)."""

    def __init__(self, status: int | None) -> None:
        super().__init__(f"probe failed: {status}")
        self.status = status


async def read_head(session: aiohttp.ClientSession, url: str, count: int) -> Head:
    """The first ``count`` bytes of ``url`` (fewer if it is shorter), by a ranged GET.

    A server that ignores the range answers 200 with the whole file: only ``count`` bytes are
    read before the connection is closed. The total size comes from ``Content-Range`` (206)
    or ``Content-Length`` (200). Raises :class:`ProbeFailed`; the URL (it may be signed) is
    never logged.

    Choice: redirects are not followed (a 3xx fails the probe). Discord's CDN and the
    providers' file hosts answer directly, and a member's public address must not redirect
    the bot into its own network after :func:`public_url_problem` let it through.
    """
    try:
        async with session.get(
            url, headers={"Range": f"bytes=0-{count - 1}"}, allow_redirects=False
        ) as response:
            if response.status not in (200, 206):
                raise ProbeFailed(response.status)
            total = _total(response)
            data = b""
            while len(data) < count:
                chunk = await response.content.read(count - len(data))
                if not chunk:
                    break
                data += chunk
            return Head(data, total)
    except aiohttp.ClientError as exc:
        log.info("probe.failed", error=type(exc).__name__)
        raise ProbeFailed(None) from None


def _total(response: aiohttp.ClientResponse) -> int | None:
    if response.status == 206:
        # Content-Range: bytes 0-15/12345 ("*" when the server does not know).
        _, _, total = response.headers.get("Content-Range", "").rpartition("/")
        return int(total) if total.isdigit() else None
    return response.content_length


async def public_url_problem(url: str) -> str | None:
    """Why the bot must not fetch ``url`` for a member, or None.

    A URL typed by a member is fetched by the bot (to sniff it) before the provider gets it,
    so it must lead to the public internet: an address on the bot's own machine or network
    (``localhost``, ``10.0.0.1``, a cloud metadata address) would let members probe what
    the bot can reach. Every address the host resolves to must be global.
    Choice: the check resolves the name once; a name that resolves differently a moment
    later (DNS rebinding) reads at most the first bytes of a file, which are never shown.
    """
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
        port = parts.port
    except ValueError:
        return "That is not a web address I can open."
    if parts.scheme not in ("http", "https") or not host:
        return "Give a web address starting with https://."
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM
            )
        except OSError:
            return "I can't find that web address (its name does not resolve)."
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not addresses or not all(address.is_global for address in addresses):
        return "I only open public web addresses, not ones on private networks."
    return None
