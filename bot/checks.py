"""``pikabot check``: the Discord token and the provider key, each with one cheap call, and
the link that invites the bot (its application id asked of Discord with the same token).

The settings themselves are checked before this runs (``load_settings``: one line naming a
missing or invalid setting, exit code 2). Each check gives one :class:`Check` line; nothing
here ever prints or logs a secret. The core imports nothing from ``discord``: the CLI passes
discord.py's REST base in (``discord.http.Route.BASE``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

from bot import __version__
from bot.config import ProviderName, Settings
from bot.invite import invite_line
from bot.providers import build_provider
from bot.providers.errors import (
    NotFound,
    OutOfProviderCredits,
    ProviderError,
    RateLimited,
    TransientError,
)
from bot.providers.http import (
    CONNECTION_ERRORS,
    NotDelivered,
    RefusedAtTheDoor,
    parse_retry_after,
    read_json,
)
from bot.reach import unreachable_reason
from bot.redact import without_password

CHECK_SECONDS = 60.0
"""Bound on each check, retries included."""
_DISCORD_TIMEOUT = aiohttp.ClientTimeout(total=20, sock_connect=10)
_DISCORD_USER_AGENT = f"DiscordBot (https://github.com/pikabot/pikabot, {__version__})"

PROVIDER_LABELS: Mapping[ProviderName, str] = {
    ProviderName.FAL: "fal.ai",
    ProviderName.AIGATEWAY: "AIgateway",
    ProviderName.ONEMIN: "1min.ai",
    ProviderName.PIXAZO: "Pixazo",
}


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the report: passed or not, and a sentence saying why."""

    ok: bool
    text: str


def _provider_url(settings: Settings) -> str:
    return str(
        {
            ProviderName.FAL: settings.fal_queue_url,
            ProviderName.AIGATEWAY: settings.aigateway_base_url,
            ProviderName.ONEMIN: settings.onemin_base_url,
            ProviderName.PIXAZO: settings.pixazo_base_url,
        }[settings.provider]
    )


def _host(url: str) -> str:
    """Only the host (and a non-default port) of ``url``: never user info, path or query."""
    parsed = URL(url)
    host = parsed.host or "?"
    return f"{host}:{parsed.port}" if parsed.port and not parsed.is_default_port() else host


def _url_setting(settings: Settings) -> str:
    return {
        ProviderName.FAL: "FAL_QUEUE_URL",
        ProviderName.AIGATEWAY: "AIGATEWAY_BASE_URL",
        ProviderName.ONEMIN: "ONEMIN_BASE_URL",
        ProviderName.PIXAZO: "PIXAZO_BASE_URL",
    }[settings.provider]


def settings_check(settings: Settings) -> Check:
    """The line for settings that loaded (``load_settings`` has already refused bad ones),
    with the SQLite file's absolute path and whether it exists yet (the check creates nothing),
    or the PostgreSQL URL without its password."""
    if not settings.database_url.startswith("sqlite:"):
        where = f"database (PIKABOT_DATABASE_URL) {without_password(settings.database_url)}"
    else:
        database = settings.database
        state = (
            "exists"
            if database.is_file()
            else "does not exist yet: `pikabot run` will create a new, empty one"
        )
        where = f"database (PIKABOT_DATABASE) {database} {state}"
    return Check(
        True,
        f"settings: PIKA_PROVIDER={settings.provider.value},"
        f" DISCORD_TOKEN and {settings.provider_key_name()} set;"
        f" {where}",
    )


async def discord_check(session: aiohttp.ClientSession, api_base: str, token: str) -> Check:
    """``GET {api_base}/users/@me`` with the bot token: who Discord says the bot is."""
    url = f"{api_base.rstrip('/')}/users/@me"
    headers = {"Authorization": f"Bot {token}", "User-Agent": _DISCORD_USER_AGENT}
    try:
        async with session.get(url, headers=headers, timeout=_DISCORD_TIMEOUT) as response:
            status = response.status
            body: Any = await read_json(response)
            retry_after = parse_retry_after(response.headers)
    except CONNECTION_ERRORS as exc:
        return Check(
            False,
            f"Discord: could not reach {_host(url)}: {unreachable_reason(exc)};"
            " check this machine's network, DNS and firewall",
        )
    if status == 200 and isinstance(body, Mapping):
        name, user_id = body.get("username", "?"), body.get("id", "?")
        return Check(True, f"Discord accepted DISCORD_TOKEN: the bot is {name} (id {user_id})")
    if status == 401:
        return Check(
            False,
            "Discord refused DISCORD_TOKEN (401): copy the bot token again from the developer"
            " portal (Bot → Reset Token)",
        )
    if status == 429:
        wait = f" in {retry_after:.0f} s" if retry_after is not None else " later"
        return Check(False, f"Discord is rate limiting this address (429): try again{wait}")
    return Check(False, f"Discord answered HTTP {status} to the token check: try again later")


async def invite_check(session: aiohttp.ClientSession, api_base: str, token: str) -> Check:
    """``GET {api_base}/oauth2/applications/@me``: the application id, for the invite link."""
    url = f"{api_base.rstrip('/')}/oauth2/applications/@me"
    headers = {"Authorization": f"Bot {token}", "User-Agent": _DISCORD_USER_AGENT}
    try:
        async with session.get(url, headers=headers, timeout=_DISCORD_TIMEOUT) as response:
            status = response.status
            body: Any = await read_json(response)
    except CONNECTION_ERRORS as exc:
        return Check(False, f"invite link: could not ask Discord: {unreachable_reason(exc)}")
    application_id = body.get("id") if isinstance(body, Mapping) else None
    if status != 200 or not str(application_id or "").isdigit():
        return Check(
            False,
            f"invite link: Discord answered HTTP {status} when asked for the application's id;"
            " build the link in the developer portal (OAuth2 → URL Generator) instead",
        )
    return Check(True, invite_line(int(str(application_id))))


async def provider_check(settings: Settings, session: aiohttp.ClientSession) -> Check:
    """The configured provider's ``verify_key``, as one line."""
    label = f"{PROVIDER_LABELS[settings.provider]} ({_host(_provider_url(settings))})"
    key_name = settings.provider_key_name()
    provider = build_provider(settings, session)
    try:
        async with asyncio.timeout(CHECK_SECONDS):
            verdict = await provider.verify_key()
    except TimeoutError:
        return Check(False, f"{label} did not answer the key check within {CHECK_SECONDS:.0f} s")
    except OutOfProviderCredits:
        return Check(False, f"{label} knows {key_name}, but the account is out of funds: top it up")
    except RateLimited:
        return Check(False, f"{label} is rate limiting the key check: try again in a minute")
    except RefusedAtTheDoor:
        return Check(False, f"{label} is busy (HTTP 503) and could not check {key_name}: try later")
    except TransientError as exc:
        if isinstance(exc, NotDelivered) or _is_connection_error(exc.__cause__):
            return Check(
                False,
                f"{label}: could not check {key_name}, it cannot be reached"
                f" ({unreachable_reason(exc)}); check the network and {_url_setting(settings)}",
            )
        return Check(
            False,
            f"{label}: could not check {key_name}: the service is failing on its side"
            " (a server error or time-out); try again later",
        )
    except NotFound:
        return Check(
            False,
            f"{label}: could not check {key_name}: the address does not offer the key-check"
            f" call (HTTP 404); check {_url_setting(settings)}",
        )
    except ProviderError:
        return Check(
            False,
            f"{label}: could not check {key_name}: it answered in a way pikabot does not"
            " understand; try again later",
        )
    if verdict is None:
        return Check(
            True,
            f"{key_name} is set but not verified: {label} has no call that tests a key without"
            " starting a paid generation (`pikabot generate` tests it, for the price of a clip)",
        )
    if verdict:
        return Check(True, f"{label} accepted {key_name}")
    return Check(
        False, f"{label} refused {key_name}: copy the key again from the provider's dashboard"
    )


def _is_connection_error(exc: BaseException | None) -> bool:
    return isinstance(exc, CONNECTION_ERRORS)


async def run_checks(settings: Settings, *, discord_api: str) -> list[Check]:
    """Every check, in order: settings, Discord token, provider key, and (once Discord took
    the token) the invite link."""
    assert settings.discord_token is not None  # load_settings(need_discord=True) ensured it
    token = settings.discord_token.get_secret_value()
    results = [settings_check(settings)]
    async with aiohttp.ClientSession() as session:
        discord = await discord_check(session, discord_api, token)
        results.append(discord)
        results.append(await provider_check(settings, session))
        if discord.ok:
            results.append(await invite_check(session, discord_api, token))
    return results
