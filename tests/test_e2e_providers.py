"""Every provider end to end: the unmodified bot process (``pikabot run``) and ``pikabot
generate``, with ``PIKA_PROVIDER`` set to each provider in turn and its base URL pointing at its
loopback fake.

``/pika`` must deliver the fake's exact bytes and charge once (ledger: reserve, charge); a
documented provider failure must be explained on the status message and refunded (reserve,
refund). The terminal runs the same core, including image-to-video from a local file or a URL.

Pace: AIgateway and Pixazo are polled at their documented intervals (3 s and 2.5 s; the
interval is never lowered below them), so their jobs take one real interval here.
"""

from __future__ import annotations

import asyncio
import base64
import os
import sqlite3
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.bot_process import BotProcess
from tests.fakes.discord import CHANNEL_ID, GUILD_ID, USER_ID, DiscordDouble, Message
from tests.fakes.providers import SETUPS, ProviderSetup

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4


@dataclass(frozen=True)
class Failure:
    """A documented failure of one provider, and what the member must be told."""

    arrange: Callable[[Any], None]
    shown: str


FAILURES: dict[str, Failure] = {
    # fal: a failed generation still reaches COMPLETED; the result fetch carries the error.
    "fal": Failure(
        lambda fake: fake.fail_result(500, "boom", error_type="generation_error"),
        "could not generate",
    ),
    # AIgateway: the job ends "failed" with {code, message} (failed jobs are not charged).
    "aigateway": Failure(
        lambda fake: fake.fail_jobs({"code": "upstream_error", "message": "boom"}),
        "could not generate",
    ),
    # 1min.ai: an empty account refuses the call (402).
    "onemin": Failure(lambda fake: fake.script_error("submit", 402), "out of funds"),
    # Pixazo: the subscription key is refused (401).
    "pixazo": Failure(lambda fake: fake.script_error("submit", 401), "key was refused"),
}

EXPECTED_REQUESTS: dict[str, dict[str, int]] = {
    # submit, one status stream that pushes COMPLETED, the result, the video.
    "fal": {"submit": 1, "stream": 1, "status": 0, "result": 1, "file": 1},
    # submit, a poll answering "queued", one 3 s later answering "completed", the video.
    "aigateway": {"submit": 1, "status": 2, "file": 1},
    # the one blocking call, the video.
    "onemin": {"submit": 1, "file": 1},
    # submit, a poll answering QUEUED, one 2.5 s later answering COMPLETED, the video.
    "pixazo": {"submit": 1, "status": 2, "file": 1},
}
"""Requests each fake sees for one clip (the fakes finish on their second observation)."""


@dataclass
class World:
    setup: ProviderSetup
    fake: Any
    discord: DiscordDouble
    bot: BotProcess
    db: Path

    def ledger(self) -> list[str]:
        with sqlite3.connect(self.db) as db:
            return [row[0] for row in db.execute("SELECT kind FROM ledger ORDER BY id")]

    async def settled(self, kinds: list[str], timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait (bounded) until the ledger holds exactly ``kinds``."""
        for _ in range(int(timeout / 0.05)):
            if self.ledger() == kinds:
                return
            await asyncio.sleep(0.05)
        assert self.ledger() == kinds


def description(message: Message) -> str:
    return message.embeds[0].get("description", "") if message.embeds else ""


def env_for(setup: ProviderSetup, fake: Any, db: Path) -> dict[str, str]:
    return {
        **setup.env(fake),
        "PIKABOT_DATABASE": str(db),
        "PIKABOT_POLL_INTERVAL": "0.1",  # fal's fallback polling only; others keep their own
        "PIKABOT_STATUS_EDIT_INTERVAL": "0.1",
        "PIKABOT_DEFAULT_ALLOWANCE": "1000",  # AIgateway's 5 s clip costs 200 credits
        "PIKABOT_LOG_FORMAT": "json",
    }


@pytest.fixture(params=list(SETUPS))
async def world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[World]:
    setup = SETUPS[request.param]
    async with DiscordDouble() as discord, setup.make() as fake:
        db = tmp_path / "pikabot.sqlite3"
        env = {
            **env_for(setup, fake, db),
            "DISCORD_TOKEN": discord.token,
            "PIKABOT_DEV_GUILD_ID": str(GUILD_ID),
        }
        bot = BotProcess(discord.rest_base, env, tmp_path / "bot.log")
        await bot.start()
        try:
            await discord.wait_ready(timeout=20)
            await discord.wait_for(lambda e: e.kind == "command_sync", timeout=20)
            yield World(setup, fake, discord, bot, db)
        finally:
            await bot.stop()
            assert not discord.errors, discord.errors
            assert fake.key not in bot.log()
            assert discord.token not in bot.log()


async def pika(world: World, prompt: str) -> None:
    interaction = await world.discord.slash(
        "pika", {"prompt": prompt}, channel_id=CHANNEL_ID, user_id=USER_ID
    )
    callback = await interaction.answer(timeout=10)
    assert callback.ephemeral
    assert "credits reserved" in callback.data["content"]


def timings(fake: Any) -> str:
    """One line for the record: requests per kind and when completion was acted on."""
    recorded = fake.recorded()
    start = recorded[0].time
    polls = [r.time - start for r in recorded if r.kind in ("status", "stream")]
    file = next(r.time - start for r in recorded if r.kind == "file")
    last = polls[-1] if polls else 0.0
    kinds = {r.kind for r in recorded}
    counts = ", ".join(f"{k} {fake.count(k)}" for k in sorted(kinds))
    return (
        f"{counts}; observations at {[round(t, 2) for t in polls]} s after submit;"
        f" video fetched {file - last:.3f} s after the last observation ({file:.2f} s in all)"
    )


TOOL_COMMANDS = {"pikaffect", "pika-add", "pika-swap", "pika-frames"}
TOOL_MENUS = {"Add to this video", "Swap in this video"}


def registered_tools(discord: DiscordDouble) -> tuple[set[str], set[str], bool]:
    """The Pika tools' slash commands and message menus synced, and whether /quota has
    its effects switch."""
    commands = discord.commands(GUILD_ID)
    names = {c["name"] for c in commands if c.get("type", 1) == 1} & TOOL_COMMANDS
    menus = {c["name"] for c in commands if c.get("type") == 3}
    quota = next(c for c in commands if c["name"] == "quota")
    return names, menus, "effects" in {o["name"] for o in quota["options"]}


async def test_e2e_provider_pika_delivers_the_video_and_charges_once(world: World):
    """/pika on each provider: the fake's exact bytes attached, one job, reserve + charge.
    Only a provider that sells Pika's tools (fal) has their commands registered."""
    sells = world.setup.name == "fal"
    expected = (TOOL_COMMANDS, TOOL_MENUS, True) if sells else (set(), set(), False)
    assert registered_tools(world.discord) == expected
    cursor = world.discord.cursor()
    await pika(world, "a lighthouse in a storm")
    result = await world.discord.wait_for_message(
        lambda m: bool(m.attachments), channel_id=CHANNEL_ID, timeout=30, after=cursor
    )
    assert result.attachments[0].data == world.fake.video
    assert f"<@{USER_ID}>" in result.content
    await world.settled(["reserve", "charge"])
    for kind, count in EXPECTED_REQUESTS[world.setup.name].items():
        assert world.fake.count(kind) == count, (kind, timings(world.fake))
    print(f"\n{world.setup.name}: {timings(world.fake)}")


async def test_e2e_provider_failure_is_explained_and_refunded(world: World):
    """A documented failure on each provider: a clear status message, reserve + refund."""
    failure = FAILURES[world.setup.name]
    failure.arrange(world.fake)
    cursor = world.discord.cursor()
    await pika(world, "a clip that will not happen")
    status = await world.discord.wait_for_message(
        lambda m: failure.shown in description(m),
        channel_id=CHANNEL_ID,
        timeout=30,
        after=cursor,
        kinds=("message_create", "message_update"),
    )
    assert "boom" not in str(status.embeds)
    assert "refunded" in description(status).lower() or "refund" in str(status.embeds).lower()
    await world.settled(["reserve", "refund"])
    assert not [m for m in world.discord.messages(CHANNEL_ID) if m.attachments]


async def test_e2e_provider_cancel_is_offered_only_where_it_stops_the_bill(world: World):
    """Once submitted, the status keeps its Cancel button only on a provider that can cancel
    (fal): elsewhere the provider goes on making and billing the clip, so no refund is offered.
    Nothing is offered once the video is made (downloading)."""
    if world.setup.name == "fal":
        world.fake.stream_interval = 0.3  # slow enough that the queued state is shown
    cursor = world.discord.cursor()
    await pika(world, "a lighthouse in a storm")
    result = await world.discord.wait_for_message(
        lambda m: bool(m.attachments), channel_id=CHANNEL_ID, timeout=30, after=cursor
    )
    await world.settled(["reserve", "charge"])
    status = next(
        m
        for m in world.discord.messages(CHANNEL_ID)
        if m.id != result.id and m.embeds and not m.attachments
    )
    snapshots = [(edit.embeds, edit.components) for edit in status.history]
    working = ("🕒 Queued", "🎬 Generating")

    def has_cancel(components: list[dict[str, Any]]) -> bool:
        ids = [c.get("custom_id", "") for row in components for c in row.get("components", [])]
        return any(i.startswith("pikabot:cancel:") for i in ids)

    submitted = [
        has_cancel(components)
        for embeds, components in snapshots
        if embeds and embeds[0].get("description", "").startswith(working)
    ]
    assert submitted, "the submitted job's state was never shown"
    assert set(submitted) == {world.setup.name == "fal"}
    made = [
        has_cancel(components)
        for embeds, components in snapshots
        if embeds and embeds[0].get("description", "").startswith("⬇️")
    ]
    assert not any(made)


# -- pikabot generate ---------------------------------------------------------------------


async def generate(*args: str, env: dict[str, str], cwd: Path) -> tuple[int, str]:
    """``python -m bot generate ARGS`` with exactly ``env`` (plus PATH), bounded to 60 s."""
    full_env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), **env}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "generate",
        *args,
        cwd=cwd,
        env=full_env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        _, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, err.decode()


@pytest.mark.parametrize("setup", SETUPS.values(), ids=list(SETUPS))
async def test_generate_on_each_provider_saves_the_video(setup: ProviderSetup, tmp_path: Path):
    """``pikabot generate`` on each provider writes the fake's exact bytes, exit 0."""
    async with setup.make() as fake:
        env = env_for(setup, fake, tmp_path / "db.sqlite3")
        out = tmp_path / "clip.mp4"
        code, err = await generate(
            "a paper boat -ar 9:16", "--out", str(out), env=env, cwd=tmp_path
        )
        assert code == 0, err
        assert out.read_bytes() == fake.video
        assert fake.count("submit") == 1
        assert fake.key not in err
        assert "saved" in err


async def test_generate_failure_exits_1_with_the_reason(tmp_path: Path):
    """A failed job on a polled provider: the user-safe reason and exit 1, no file."""
    setup = SETUPS["aigateway"]
    async with setup.make() as fake:
        fake.fail_jobs("upstream exploded")
        env = env_for(setup, fake, tmp_path / "db.sqlite3")
        out = tmp_path / "clip.mp4"
        code, err = await generate("a fox", "--out", str(out), env=env, cwd=tmp_path)
        assert code == 1
        shown = err.strip().splitlines()[-1]  # the terminal's line (logs go to stderr too)
        assert "failed: The video service could not generate this clip." in shown
        assert "exploded" not in shown
        assert not out.exists()


async def test_generate_image_from_a_local_png_reaches_fal_as_a_data_uri(tmp_path: Path):
    """fal documents data URIs: the file's bytes arrive inline on the image-to-video endpoint."""
    setup = SETUPS["fal"]
    frame = tmp_path / "frame.png"
    frame.write_bytes(PNG)
    async with setup.make() as fake:
        env = env_for(setup, fake, tmp_path / "db.sqlite3")
        out = tmp_path / "clip.mp4"
        code, err = await generate(
            "the waves start moving",
            "--image",
            str(frame),
            "--out",
            str(out),
            env=env,
            cwd=tmp_path,
        )
        assert code == 0, err
        assert out.read_bytes() == fake.video
        submit = fake.recorded("submit")[0]
        assert submit.path == "/fal-ai/pika/v2.2/image-to-video"
        prefix = "data:image/png;base64,"
        assert submit.json["image_url"].startswith(prefix)
        assert base64.b64decode(submit.json["image_url"].removeprefix(prefix)) == PNG
        assert "aspect_ratio" not in submit.json


async def test_generate_image_url_is_passed_to_pixazo(tmp_path: Path):
    """A URL goes through unchanged to Pixazo's image-to-video product."""
    setup = SETUPS["pixazo"]
    url = "https://images.example/first-frame.png"
    async with setup.make() as fake:
        env = env_for(setup, fake, tmp_path / "db.sqlite3")
        out = tmp_path / "clip.mp4"
        code, err = await generate(
            "a kite rising", "--image", url, "--out", str(out), env=env, cwd=tmp_path
        )
        assert code == 0, err
        assert out.read_bytes() == fake.video
        submit = fake.recorded("submit")[0]
        assert submit.path == "/pika-2-2-image-to-video/v1/pika-2-2-image-to-video-request"
        assert submit.json["image_url"] == url


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("pixazo", "takes images only as URLs"),
        ("aigateway", "takes images only as URLs"),
        ("onemin", "cannot make image-to-video"),
    ],
)
async def test_generate_local_image_refused_where_the_provider_needs_a_url(
    name: str, shown: str, tmp_path: Path
):
    """A local file for a provider without data URIs: exit 2, what to do, nothing sent."""
    setup = SETUPS[name]
    frame = tmp_path / "frame.png"
    frame.write_bytes(PNG)
    async with setup.make() as fake:
        env = env_for(setup, fake, tmp_path / "db.sqlite3")
        code, err = await generate("a kite", "--image", str(frame), env=env, cwd=tmp_path)
        assert code == 2, err
        assert shown in err
        assert fake.requests == []


async def test_generate_image_file_checks(tmp_path: Path):
    """Missing or non-image files are refused before anything is reserved or sent."""
    setup = SETUPS["fal"]
    gif = tmp_path / "a.gif"
    gif.write_bytes(b"GIF89a" + b"\x00" * 32)
    async with setup.make() as fake:
        env = env_for(setup, fake, tmp_path / "db.sqlite3")
        code, err = await generate(
            "x", "--image", str(tmp_path / "nope.png"), env=env, cwd=tmp_path
        )
        assert code == 2 and "does not exist" in err
        code, err = await generate("x", "--image", str(gif), env=env, cwd=tmp_path)
        assert code == 2 and "not a PNG, JPEG or WebP" in err
        assert fake.requests == []
