"""Why a connection failed, in an operator's words: DNS, refused, TLS, timeout or dropped.

aiohttp's exception class names (``ClientConnectorDNSError``) mean nothing to an operator;
start-up errors and ``pikabot check`` say what happened instead.
"""

from __future__ import annotations

import socket
import ssl

import aiohttp


def unreachable_reason(exc: BaseException) -> str:
    """What stopped the connection, as a short clause (never a class name or a secret)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:  # bounded: each cause once
        seen.add(id(current))
        reason = _reason(current)
        if reason is not None:
            return reason
        current = current.__cause__ or current.__context__
    return "the connection failed"


def _reason(exc: BaseException) -> str | None:
    if isinstance(exc, socket.gaierror) or type(exc).__name__ == "ClientConnectorDNSError":
        return "its name does not resolve (DNS)"
    if isinstance(
        exc, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError | ssl.SSLError
    ):
        return "its TLS certificate or handshake was not accepted"
    if isinstance(exc, ConnectionRefusedError):
        return "the connection was refused"
    if isinstance(exc, aiohttp.ClientConnectorError):
        os_error = exc.os_error
        if isinstance(os_error, socket.gaierror):
            return "its name does not resolve (DNS)"
        if isinstance(os_error, ConnectionRefusedError):
            return "the connection was refused"
        if isinstance(os_error, TimeoutError):
            return "it did not answer in time"
        return "the connection could not be opened"
    if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
        return "it did not answer in time"
    if isinstance(exc, aiohttp.ServerDisconnectedError | ConnectionResetError):
        return "the connection was dropped"
    return None
