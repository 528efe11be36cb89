"""``pikabot check`` as an operator runs it: a real process, discord.py pointed at the loopback
Discord double, each provider's key checked against its loopback fake."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path

import pytest
from discord import Permissions as discord_permissions

from cogs.launcher import REQUIRED_CHANNEL_PERMISSIONS
from tests.fakes.discord import APPLICATION_ID, DiscordDouble
from tests.fakes.providers import SETUPS, ProviderSetup

ROOT = Path(__file__).resolve().parent.parent


async def check(
    rest_base: str | None, env: dict[str, str], cwd: Path
) -> tuple[int, list[str], str]:
    """Run ``pikabot check`` through the test launcher (discord.py aimed at ``rest_base``), or
    as ``python -m bot check`` when ``rest_base`` is None."""
    full_env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        "PYTHONIOENCODING": "utf-8",
        "PIKABOT_DATABASE": str(cwd / "db.sqlite3"),
        **env,
    }
    launcher = (
        ["-m", "bot"]
        if rest_base is None
        else ["-m", "tests.fakes.discord.launch", rest_base, "--"]
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *launcher,
        "check",
        cwd=ROOT,
        env=full_env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode().splitlines(), err.decode()


@pytest.mark.parametrize("setup", SETUPS.values(), ids=list(SETUPS))
async def test_check_passes_with_good_token_and_key(setup: ProviderSetup, tmp_path: Path):
    """Good token and key: four ✓ lines (the last the invite link), exit 0; the key check
    creates no job; 1min.ai's key is reported as set but not verifiable, and nothing is sent
    to 1min.ai at all."""
    async with DiscordDouble() as discord, setup.make() as fake:
        env = {"DISCORD_TOKEN": discord.token, **setup.env(fake)}
        code, lines, err = await check(discord.rest_base, env, tmp_path)
        assert code == 0, (lines, err)
        assert len(lines) == 4, lines
        assert all(line.startswith("✓ ") for line in lines), lines
        assert f"PIKA_PROVIDER={setup.name}" in lines[0]
        assert "Discord accepted DISCORD_TOKEN" in lines[1]
        assert "pikabot" in lines[1]
        assert discord.requests_to("GET", "/users/@me")
        if setup.name == "onemin":
            assert "not verified" in lines[2]
            assert fake.requests == []
        else:
            assert f"accepted {setup.key_env}" in lines[2]
            assert len(fake.requests) == 1
            assert fake.count("submit") == 0
        output = "\n".join(lines) + err
        assert fake.key not in output
        assert discord.token not in output


async def test_check_prints_the_invite_link(tmp_path: Path):
    """The last line is the invite link of the application Discord names for the token, with
    the scopes and permissions the README lists."""
    setup = SETUPS["fal"]
    async with DiscordDouble() as discord, setup.make() as fake:
        env = {"DISCORD_TOKEN": discord.token, **setup.env(fake)}
        code, lines, err = await check(discord.rest_base, env, tmp_path)
        assert code == 0, (lines, err)
        assert discord.requests_to("GET", "/oauth2/applications/@me")
    permissions = discord_permissions(
        view_channel=True,
        send_messages=True,
        embed_links=True,
        attach_files=True,
        read_message_history=True,
        add_reactions=True,
    ).value
    assert lines[3] == (
        "✓ invite the bot with https://discord.com/oauth2/authorize"
        f"?client_id={APPLICATION_ID}&permissions={permissions}&integration_type=0"
        "&scope=bot+applications.commands (scopes bot and applications.commands; permissions"
        " View Channels, Send Messages, Embed Links, Attach Files, Read Message History,"
        " Add Reactions)"
    )
    readme = (ROOT / "README.md").read_text()
    assert (
        "**View Channels, Send Messages, Embed Links, Attach Files, Read Message\n   History,"
        " Add Reactions**" in readme
    )
    assert REQUIRED_CHANNEL_PERMISSIONS.value == permissions  # what /pika checks per channel


async def test_check_says_when_the_invite_link_cannot_be_built(tmp_path: Path):
    """Discord failing the application lookup: a ✗ invite line pointing at the portal."""
    setup = SETUPS["fal"]
    async with DiscordDouble() as discord, setup.make() as fake:
        discord.fail("GET /oauth2/applications/@me", 500)
        env = {"DISCORD_TOKEN": discord.token, **setup.env(fake)}
        code, lines, err = await check(discord.rest_base, env, tmp_path)
    assert code == 1, (lines, err)
    assert lines[3].startswith("✗ invite link: Discord answered HTTP 500")
    assert "URL Generator" in lines[3]


@pytest.mark.parametrize("name", ["fal", "aigateway", "pixazo"])
async def test_check_reports_a_refused_key(name: str, tmp_path: Path):
    """A key the provider refuses: a ✗ line naming the setting, exit 1, the key not shown."""
    setup = SETUPS[name]
    async with DiscordDouble() as discord, setup.make() as fake:
        env = {"DISCORD_TOKEN": discord.token, **setup.env(fake, key="wrong-key-123")}
        code, lines, err = await check(discord.rest_base, env, tmp_path)
        assert code == 1, (lines, err)
        assert lines[1].startswith("✓ ")
        assert lines[2].startswith("✗ ")
        assert f"refused {setup.key_env}" in lines[2]
        assert "wrong-key-123" not in "\n".join(lines) + err


async def test_check_reports_a_refused_discord_token(tmp_path: Path):
    """A token Discord refuses: ✗ with what to do, the provider still checked, exit 1."""
    setup = SETUPS["fal"]
    async with DiscordDouble() as discord, setup.make() as fake:
        env = {"DISCORD_TOKEN": "not-the-token", **setup.env(fake)}
        code, lines, err = await check(discord.rest_base, env, tmp_path)
        assert code == 1, (lines, err)
        assert lines[1].startswith("✗ Discord refused DISCORD_TOKEN")
        assert "developer portal" in lines[1]
        assert lines[2].startswith("✓ ")
        assert len(lines) == 3  # no invite link without a token Discord took
        assert "not-the-token" not in "\n".join(lines) + err


async def test_check_reports_an_unreachable_provider(tmp_path: Path):
    """A provider that does not answer is a failed check (not a refused key), exit 1."""
    setup = SETUPS["aigateway"]
    async with DiscordDouble() as discord:
        async with setup.make() as fake:
            env = {"DISCORD_TOKEN": discord.token, **setup.env(fake)}
        # The fake is closed: its port refuses connections.
        code, lines, err = await check(discord.rest_base, env, tmp_path)
        assert code == 1, (lines, err)
        assert lines[2].startswith("✗ ")
        assert "could not check AIGATEWAY_API_KEY" in lines[2]
        assert "the connection was refused" in lines[2] and "AIGATEWAY_BASE_URL" in lines[2]
        assert "NotDelivered" not in lines[2] and "Error" not in lines[2]


async def test_check_reports_an_unreachable_discord_in_words(tmp_path: Path):
    """Discord's API not answering is said in words (refused), not as an aiohttp class."""
    setup = SETUPS["fal"]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with setup.make() as fake:
        env = {"DISCORD_TOKEN": "t", **setup.env(fake)}
        code, lines, err = await check(f"http://127.0.0.1:{port}/api/v10", env, tmp_path)
    assert code == 1, (lines, err)
    assert lines[1] == (
        f"✗ Discord: could not reach 127.0.0.1:{port}: the connection was refused;"
        " check this machine's network, DNS and firewall"
    )


def relative_to_root(path: Path) -> str:
    """``path`` relative to the repository root (``../../tmp/...``)."""
    return os.path.relpath(path, ROOT)


async def test_check_names_the_database_it_would_use(tmp_path: Path):
    """The settings line gives the database's absolute path and says a new one would be made;
    the check itself creates nothing."""
    setup = SETUPS["fal"]
    database = tmp_path / "fresh" / "ledger.sqlite3"
    relative = relative_to_root(database)  # `check` runs in the repository root
    async with DiscordDouble() as discord, setup.make() as fake:
        env = {"DISCORD_TOKEN": discord.token, "PIKABOT_DATABASE": relative, **setup.env(fake)}
        code, lines, err = await check(discord.rest_base, env, tmp_path)
    assert code == 0, (lines, err)
    assert lines[0].endswith(
        f"database (PIKABOT_DATABASE) {database} does not exist yet:"
        " `pikabot run` will create a new, empty one"
    ), lines[0]
    assert not database.parent.exists()


async def test_check_out_of_funds_is_named(tmp_path: Path):
    """A 402 to the key check: the key is known but the account is empty, exit 1."""
    setup = SETUPS["pixazo"]
    async with DiscordDouble() as discord, setup.make() as fake:
        fake.script_error("status", 402)
        env = {"DISCORD_TOKEN": discord.token, **setup.env(fake)}
        code, lines, _ = await check(discord.rest_base, env, tmp_path)
        assert code == 1
        assert "out of funds" in lines[2]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"FAL_KEY": "k"}, "DISCORD_TOKEN is not set"),
        ({"DISCORD_TOKEN": "t", "PIKA_PROVIDER": "aigateway"}, "AIGATEWAY_API_KEY is not set"),
        (
            {"DISCORD_TOKEN": "t", "FAL_KEY": "k", "FAL_QUEUE_URL": "nope"},
            "FAL_QUEUE_URL is invalid",
        ),
    ],
)
async def test_check_settings_errors_are_one_line(
    env: dict[str, str], expected: str, tmp_path: Path
):
    """Settings errors stop the check like ``run``: one line naming the setting, exit 2."""
    code, lines, err = await check(None, env, tmp_path)
    assert code == 2
    assert lines == []
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("pikabot: ")
    assert expected in err
    assert "Traceback" not in err
