"""Every clip arrives playable: the unmodified bot process, the loopback Discord, and providers
serving real videos made with PyAV.

The posted attachment is read back (every frame decoded, the boxes read by the test): under
the guild's per-attachment limit (the interaction's ``attachment_size_limit``), H.264
yuv420p, index first, same duration and aspect. Small limits stand in for Discord's 10 MiB
where the behaviour is the same; a tier-2 guild (50 MiB) gets a 30 MB clip untouched.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.fakes.bot_process import BotProcess
from tests.fakes.discord import CHANNEL_ID, GUILD_ID, DiscordDouble, Message
from tests.fakes.media import corrupt, inspect, padded, tiny_video, video_bytes
from tests.fakes.providers import SETUPS
from tests.fakes.stack import Stack, description, footer, running_stack
from tests.polling import eventually

pytestmark = pytest.mark.e2e

LIMIT = 400 * 1024
"""The small guild limit the over-limit clips are fitted under."""


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    temp = tmp_path / "tmp"
    temp.mkdir()
    async with running_stack(tmp_path, TMPDIR=str(temp), PIKABOT_FIT_TIMEOUT="120") as running:
        yield running


def fields(message: Message) -> dict[str, str]:
    embed = message.embeds[0] if message.embeds else {}
    return {f["name"]: f["value"] for f in embed.get("fields", [])}


def leftovers(tmp_path: Path) -> list[str]:
    """Download or fit files the bot left in its temp folder."""
    return sorted(p.name for p in (tmp_path / "tmp").glob("pikabot-*"))


def status_lines(stack: Stack, result: Message) -> list[str]:
    """Every description the job's status message showed."""
    status = next(
        m
        for m in stack.discord.messages(CHANNEL_ID)
        if m.id != result.id and footer(m) == footer(result)
    )
    return [e.embeds[0].get("description", "") for e in status.history if e.embeds]


async def test_e2e_over_limit_clip_is_fitted_with_a_full_quality_link(stack: Stack, tmp_path: Path):
    """A clip with sound over the guild's limit: attached re-encoded under it, AAC kept, the
    result says so and links fal's durable URL as full quality; charged once, nothing left."""
    stack.discord.set_upload_limit(LIMIT)
    stack.fal.video = video_bytes(width=640, height=360, seconds=2, bit_rate=4_000_000, audio=True)
    assert len(stack.fal.video) > LIMIT
    cursor = stack.discord.cursor()
    await stack.pika(prompt="a storm over the sea")
    result = await stack.delivered(cursor, timeout=60)
    seen = inspect(result.attachments[0].data)
    assert seen.size <= LIMIT
    assert (seen.codec, seen.pixel_format, seen.audio_codec) == ("h264", "yuv420p", "aac")
    assert seen.moov_before_mdat
    assert seen.duration == pytest.approx(2.0, abs=0.1)
    assert seen.aspect == pytest.approx(16 / 9, rel=0.01)
    assert "Re-encoded" in description(result) and "0.4 MB" in description(result)
    assert "/files/" in fields(result)["Full quality"]
    assert any("Making it fit Discord" in line for line in status_lines(stack, result))
    await eventually(stack.job_states, ["delivered"])
    assert [k for k, _ in stack.ledger()] == ["reserve", "charge"]
    assert leftovers(tmp_path) == []


async def test_e2e_tier_two_guild_gets_the_original_untouched(stack: Stack, tmp_path: Path):
    """A 30 MB inline-ready clip on a guild boosted to tier 2 (50 MiB): the very same bytes.

    The double's whole-request cap (25 MiB, PLATFORM.md) is raised, as bench/delivery does
    for its 50 MiB clips: this is about the per-attachment limit the bot fits to."""
    await stack.discord.set_premium_tier(2)
    stack.discord.request_limit = 64 * 1024 * 1024
    stack.fal.video = padded(tiny_video(), 30 * 1000 * 1000)
    cursor = stack.discord.cursor()
    await stack.pika(prompt="a quiet lake")
    result = await stack.delivered(cursor, timeout=60)
    assert result.attachments[0].data == stack.fal.video
    assert "Full quality" not in fields(result)
    assert not any("fit Discord" in line for line in status_lines(stack, result))
    await eventually(stack.job_states, ["delivered"])
    assert leftovers(tmp_path) == []


async def test_e2e_corrupt_clip_fails_clearly_and_refunds(stack: Stack, tmp_path: Path):
    """A clip cut short: the status says it is not a playable video, credits come back."""
    stack.fal.video = corrupt(video_bytes(seconds=1))
    cursor = stack.discord.cursor()
    await stack.pika(prompt="a broken clip")
    await stack.discord.wait_for_message(
        lambda m: "not a playable video" in description(m),
        channel_id=CHANNEL_ID,
        timeout=30,
        after=cursor,
        kinds=("message_create", "message_update"),
    )
    await eventually(stack.job_states, ["failed"])
    assert [k for k, _ in stack.ledger()] == ["reserve", "refund"]
    assert not [m for m in stack.discord.messages(CHANNEL_ID) if m.attachments]
    assert leftovers(tmp_path) == []


async def test_e2e_signed_url_hevc_over_the_limit_is_fitted_never_linked(tmp_path: Path):
    """AIgateway's signed URL, an HEVC clip over the limit: no longer a failure. It is
    attached as H.264 under the limit; no link, no signature anywhere in the channel."""
    setup = SETUPS["aigateway"]
    async with DiscordDouble() as discord, setup.make() as fake:
        fake.video = video_bytes(
            codec="libx265", width=640, height=360, seconds=2, bit_rate=3_000_000
        )
        assert len(fake.video) > LIMIT
        discord.set_upload_limit(LIMIT)
        db = tmp_path / "pikabot.sqlite3"
        env = {
            **setup.env(fake),
            "DISCORD_TOKEN": discord.token,
            "PIKABOT_DEV_GUILD_ID": str(GUILD_ID),
            "PIKABOT_DATABASE": str(db),
            "PIKABOT_DEFAULT_ALLOWANCE": "1000",
            "PIKABOT_STATUS_EDIT_INTERVAL": "0.1",
        }
        bot = BotProcess(discord.rest_base, env, tmp_path / "bot.log")
        await bot.start()
        try:
            await discord.wait_ready(timeout=20)
            await discord.wait_for(lambda e: e.kind == "command_sync", timeout=20)
            cursor = discord.cursor()
            it = await discord.slash("pika", {"prompt": "neon rain"}, channel_id=CHANNEL_ID)
            await it.answer(timeout=10)
            result = await discord.wait_for_message(
                lambda m: bool(m.attachments), channel_id=CHANNEL_ID, timeout=60, after=cursor
            )
            seen = inspect(result.attachments[0].data)
            assert seen.size <= LIMIT and (seen.codec, seen.pixel_format) == ("h264", "yuv420p")
            assert seen.moov_before_mdat
            assert seen.duration == pytest.approx(2.0, abs=0.1)
            assert "Re-encoded" in description(result) and "HEVC" in description(result)
            assert "Full quality" not in fields(result)
            shown = str([(m.content, m.embeds) for m in discord.messages(CHANNEL_ID)])
            assert "signature" not in shown and "/files/" not in shown
            with sqlite3.connect(db) as conn:
                kinds = [r[0] for r in conn.execute("SELECT kind FROM ledger ORDER BY id")]
            assert kinds[0] == "reserve"
            await _until(lambda: _kinds(db) == ["reserve", "charge"])
        finally:
            await bot.stop()
        assert "signature=fake" not in bot.log()
        assert not discord.errors, discord.errors


def _kinds(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [r[0] for r in conn.execute("SELECT kind FROM ledger ORDER BY id")]


async def _until(check: Any, within: float = 10.0) -> None:
    for _ in range(int(within / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    assert check()


def _fit_workers(bot: BotProcess) -> list[psutil.Process]:
    """The bot's fit worker processes (its multiprocessing children but the tracker)."""
    assert bot.process is not None
    return [
        child
        for child in psutil.Process(bot.process.pid).children(recursive=True)
        if "resource_tracker" not in " ".join(child.cmdline())
    ]


async def test_e2e_restart_while_fitting_carries_on_and_posts_once(stack: Stack, tmp_path: Path):
    """kill -9 while two clips are being fitted (one in the worker, one waiting in the fitting
    line, its place shown): the next start downloads and fits both again and posts each once.

    The worker is frozen (SIGSTOP) after a first fit started it, so the kill lands mid-fit on
    any machine, however fast."""
    stack.discord.set_upload_limit(LIMIT)
    stack.fal.video = video_bytes(width=640, height=360, seconds=1, bit_rate=6_000_000)
    cursor = stack.discord.cursor()
    await stack.pika(prompt="the first, which starts the worker")
    first = await stack.delivered(cursor, timeout=60)
    await eventually(stack.job_states, ["delivered"])
    frozen = _fit_workers(stack.bot)
    assert frozen, "the fit worker outlives its first fit"
    for worker in frozen:
        worker.send_signal(signal.SIGSTOP)
    try:
        cursor = stack.discord.cursor()
        await stack.pika(prompt="the second, fitting at the crash")
        await eventually(stack.job_states, ["delivered", "fitting"], within=30)
        await stack.pika(prompt="the third, in line at the crash")
        await eventually(stack.job_states, ["delivered", "fitting", "fitting"], within=30)
        await stack.discord.wait_for_message(
            lambda m: "Making it fit Discord · waiting in line, position 1" in description(m),
            channel_id=CHANNEL_ID,
            timeout=20,
            after=cursor,
            kinds=("message_create", "message_update"),
        )
        await stack.bot.kill()
    finally:
        for worker in frozen:  # orphans now: stop them for good
            if worker.is_running():
                worker.kill()
    assert stack.bot.log().count('"video.fitted"') == 1, "only the first was fitted"
    await stack.bot.start()
    # Reclaimed at once by the sole bot on SQLite (else once the leases run out).
    await eventually(stack.job_states, ["delivered"] * 3, within=90)
    posted = [m for m in stack.discord.messages(CHANNEL_ID) if m.attachments]
    assert sorted(footer(m) for m in posted) == ["job 1", "job 2", "job 3"], "each once"
    assert first.id == posted[0].id
    for message in posted:
        seen = inspect(message.attachments[0].data)
        assert seen.size <= LIMIT and seen.moov_before_mdat and seen.codec == "h264"
    assert stack.fal.count("submit") == 3
    kinds = [k for k, _ in stack.ledger()]
    assert kinds == ["reserve", "charge", "reserve", "reserve", "charge", "charge"]
    assert leftovers(tmp_path) == [], "the killed run's downloads were swept at the start"
