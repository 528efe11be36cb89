"""The unmodified bot process against a loopback Discord and a loopback fal.

These drive ``pikabot run`` exactly as Discord would: slash commands arrive over the gateway,
the bot answers through the interaction callback, posts and edits channel messages over
REST, and uploads the video as a multipart attachment.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fakes.bot_process import ROOT
from tests.fakes.discord import CHANNEL_ID, GUILD_ID, USER_ID, Upload
from tests.fakes.stack import Stack, description, footer, running_stack
from tests.polling import eventually

pytestmark = pytest.mark.e2e


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with running_stack(tmp_path) as running:
        yield running


async def pika(stack: Stack, **options: object):
    return await stack.pika(**options)


async def test_e2e_pika_posts_video_with_one_status_message(stack: Stack):
    """/pika: private ack, one status message moving through states, the exact bytes attached."""
    cursor = stack.discord.cursor()
    _, callback = await pika(stack, prompt="a fox in snow -ar 9:16 -seed 42")
    assert callback.ephemeral
    assert "20 credits reserved" in callback.data["content"]
    result = await stack.discord.wait_for_message(
        lambda m: bool(m.attachments), channel_id=CHANNEL_ID, timeout=20, after=cursor
    )
    assert result.attachments[0].data == stack.fal.video
    assert f"<@{USER_ID}>" in result.content
    assert "seed 42" in str(result.embeds)
    await stack.discord.wait_for_message(
        lambda m: "Done" in description(m),
        channel_id=CHANNEL_ID,
        timeout=10,
        after=cursor,
        kinds=("message_update",),
    )
    status_messages = [
        m
        for m in stack.discord.messages(CHANNEL_ID)
        if m.embeds and m.id != result.id and footer(m) == footer(result)
    ]
    assert len(status_messages) == 1, "exactly one status message per job"
    status = status_messages[0]
    shown = [e.embeds[0].get("description", "") for e in status.history if e.embeds]
    assert any("Queued" in line for line in shown)
    assert any("Generating" in line for line in shown)
    assert "Done" in description(status)
    assert stack.fal.recorded("submit")[0].json["aspect_ratio"] == "9:16"
    # The charge lands in the same transaction as DELIVERED, which may follow the "Done" edit.
    await eventually(stack.job_states, ["delivered"])
    assert [k for k, _ in stack.ledger()] == ["reserve", "charge"]


async def test_e2e_video_over_upload_limit_is_fitted(stack: Stack):
    """A video over the guild's 10 MiB limit is attached re-encoded under it, saying why,
    with fal's durable URL as the full-quality link (tests/test_e2e_fit.py has the rest)."""
    stack.fal.video_size = 11 * 1024 * 1024
    cursor = stack.discord.cursor()
    await pika(stack, prompt="a long river")
    result = await stack.delivered(cursor, timeout=60)
    assert len(result.attachments[0].data) <= 10 * 1024 * 1024
    assert "upload limit of 10.0 MB" in str(result.embeds)
    assert "Full quality" in str(result.embeds) and "/files/" in str(result.embeds)
    # Fitted before the upload: Discord never had to answer 413.
    assert [r.status for r in stack.discord.requests if r.status == 413] == []


async def test_e2e_failed_generation_refunds_and_explains(stack: Stack):
    """fal's failure at result time: the status message says so and the credits come back."""
    stack.fal.fail_result(500, "boom", error_type="generation_error")
    cursor = stack.discord.cursor()
    await pika(stack, prompt="a doomed clip")
    status = await stack.discord.wait_for_message(
        lambda m: "could not generate" in description(m),
        channel_id=CHANNEL_ID,
        timeout=20,
        after=cursor,
        kinds=("message_create", "message_update"),
    )
    assert "boom" not in str(status.embeds)
    await eventually(stack.job_states, ["failed"])
    assert [k for k, _ in stack.ledger()] == ["reserve", "refund"]
    assert sum(a for _, a in stack.ledger()) == 0


async def test_e2e_not_enough_credits_is_private_and_free(stack: Stack):
    """Over the allowance: an ephemeral message with cost and balance, nothing submitted."""
    cursor = stack.discord.cursor()
    _, callback = await pika(stack, prompt="too expensive", resolution="1080p", duration=10)
    assert callback.ephemeral
    assert "90 credits reserved" in callback.data["content"]
    _, second = await pika(stack, prompt="still too expensive", resolution="1080p", duration=10)
    assert second.ephemeral and "costs 90 credits" in second.data["content"]
    assert "has 10 left" in second.data["content"]
    await stack.discord.wait_for_message(  # the first job reaches fal; the second never does
        lambda m: m.attachments != [], channel_id=CHANNEL_ID, timeout=20, after=cursor
    )
    assert stack.fal.count("submit") == 1


async def test_e2e_bad_flag_gets_friendly_ephemeral_error(stack: Stack):
    """A bad flag in the prompt is explained privately and costs nothing."""
    _, callback = await pika(stack, prompt="a cat -ar 7:3")
    assert callback.ephemeral
    assert "Unknown aspect ratio" in callback.data["content"]
    assert stack.ledger() == []


async def test_e2e_images_are_checked_by_their_bytes(stack: Stack):
    """/pika's image and /pika-scenes' images are fetched from the CDN and judged by their
    first bytes before anything is reserved: a name or a declared type proves nothing."""
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    gif = b"GIF89a" + b"\x00" * 64
    for upload, fragment in (
        (Upload("frame.png", b"just text", "image/png"), "`frame.png` is not a PNG, JPEG or WebP"),
        (Upload("empty.png", b"", "image/png"), "`empty.png` is empty"),
        (Upload("anim.png", gif, "image/png"), "`anim.png` is not a PNG, JPEG or WebP"),
    ):
        _, callback = await pika(stack, prompt="a kite", image=upload)
        assert callback.ephemeral and fragment in callback.data["content"]
    scenes = await stack.discord.slash(
        "pika-scenes",
        {"prompt": "friends", "image1": Upload("a.png", png, "image/png")},
        attachments={"image2": Upload("b.png", gif, "image/png")},
    )
    callback = await scenes.answer(timeout=10)
    assert callback.ephemeral and "`b.png` is not a PNG" in callback.data["content"]
    assert stack.ledger() == [] and stack.fal.count("submit") == 0
    cursor = stack.discord.cursor()
    _, callback = await pika(stack, prompt="a kite", image=Upload("frame.png", png, "image/png"))
    assert "credits reserved" in callback.data["content"]
    await stack.delivered(cursor)
    submit = stack.fal.recorded("submit")[0]
    assert submit.path == "/fal-ai/pika/v2.2/image-to-video"
    assert submit.json["image_url"].startswith(f"{stack.discord.base_url}/attachments/")


async def test_e2e_credits_command_shows_balance(stack: Stack):
    """/credits shows what is left, the price of a 5 s 720p clip, and the reset time."""
    interaction = await stack.discord.slash("credits", {}, channel_id=CHANNEL_ID, user_id=USER_ID)
    callback = await interaction.response(timeout=5)
    assert callback.ephemeral
    fields = {f["name"]: f["value"] for f in callback.data["embeds"][0]["fields"]}
    assert fields["Left"] == "**100** of 100"
    assert fields["A 5 s 720p clip"] == "20 credits"
    assert "<t:" in fields["Resets"]


async def test_e2e_restart_mid_job_delivers_once(stack: Stack):
    """kill -9 while fal holds the job; the next start resumes it and posts it exactly once."""
    stack.fal.queue_positions = tuple(range(40, 0, -1))
    stack.fal.stream_interval = 0.1
    cursor = stack.discord.cursor()
    await pika(stack, prompt="survives a crash")
    await stack.discord.wait_for_message(
        lambda m: "Queued" in description(m),
        channel_id=CHANNEL_ID,
        timeout=20,
        after=cursor,
        kinds=("message_create", "message_update"),
    )
    await stack.bot.kill()
    assert stack.job_states() == ["queued"]
    syncs_before = stack.discord.sync_count(GUILD_ID)
    log_before = len(stack.bot.log())
    await stack.bot.start()
    # The one bot of an SQLite file takes its killed run's job back at start (its owner id is
    # the same every run), without waiting for the lease to run out (bot.ownership.LEASE_TTL).
    await eventually(
        lambda: '"count": 1' in _first_resume(stack.bot.log()[log_before:]), True, within=20
    )
    result = await stack.discord.wait_for_message(
        lambda m: bool(m.attachments), channel_id=CHANNEL_ID, timeout=60, after=cursor
    )
    assert result.attachments[0].data == stack.fal.video
    await eventually(stack.job_states, ["delivered"])  # nothing is posted after this
    posted = [m for m in stack.discord.messages(CHANNEL_ID) if m.attachments]
    assert len(posted) == 1
    assert stack.fal.count("submit") == 1
    assert [k for k, _ in stack.ledger()] == ["reserve", "charge"]
    assert stack.discord.sync_count(GUILD_ID) == syncs_before, "unchanged commands not re-synced"


def _first_resume(log: str) -> str:
    """The start-up resume's log line (the takeover loop's later ones come after it)."""
    return next((line for line in log.splitlines() if '"jobs.resumed"' in line), "")


async def test_e2e_sigterm_shuts_down_cleanly(stack: Stack):
    """SIGTERM ends the process with exit code 0 and leaves the database consistent."""
    code = await stack.bot.stop(signal.SIGTERM)
    assert code == 0, stack.bot.log()[-2000:]
    with sqlite3.connect(stack.db) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    await stack.bot.start()  # the fixture stops it again
    await stack.discord.wait_for(lambda e: e.kind == "gateway_ready", timeout=20, after=0)


async def test_e2e_pika_options_reach_fal_exactly(stack: Stack):
    """Every /pika option becomes the matching field at the chosen model's fal endpoint;
    Pika's own Discord flags (no such fields in Pika 2.x) are taken out, and the member is
    told privately what was ignored and what was left as text."""
    cursor = stack.discord.cursor()
    _, callback = await pika(
        stack,
        prompt="harbour at \u200bdawn -ar 1:1 -fps 24 -seed 5 -camera zoom in -gs 8 -hd",
        negative_prompt="people",
        aspect="4:5",
        duration=10,
        resolution="720p",
        seed=77,
        model="2.1",
    )
    answer = callback.data["content"]
    assert "80 credits reserved" in answer
    assert "I took `-fps 24`, `-camera zoom in`, `-gs 8` out of your prompt" in answer
    assert "`-hd` is not a flag I know" in answer
    await stack.delivered(cursor)
    submit = stack.fal.recorded("submit")[0]
    assert submit.path == "/fal-ai/pika/v2.1/text-to-video"
    assert submit.json == {
        "prompt": "harbour at dawn -hd",
        "negative_prompt": "people",
        "aspect_ratio": "4:5",
        "resolution": "720p",
        "duration": 10,
        "seed": 77,
    }


async def test_e2e_pika_command_is_described_with_choices(stack: Stack):
    """The synced /pika has a description on every option and choices for the fixed sets."""
    (command,) = [c for c in stack.discord.commands(GUILD_ID) if c["name"] == "pika"]
    options = {o["name"]: o for o in command["options"]}
    assert all(o.get("description") for o in options.values())
    assert [c["value"] for c in options["aspect"]["choices"]] == [
        "16:9",
        "9:16",
        "1:1",
        "4:5",
        "5:4",
        "3:2",
        "2:3",
    ]
    assert [c["value"] for c in options["duration"]["choices"]] == [5, 10]
    assert [c["value"] for c in options["model"]["choices"]] == ["2.2", "2.1", "2-turbo"]
    assert options["seed"]["max_value"] == 2**31 - 1
    assert options["prompt"]["required"] is True
    assert options["image"]["type"] == 11


async def test_e2e_commands_work_in_servers_only(stack: Stack):
    """Every command is synced for servers only; a /pika that still arrives from a DM (a
    client with a stale command list) is answered privately, and nothing is reserved."""
    for command in stack.discord.commands(GUILD_ID):
        assert (command["contexts"], command["dm_permission"]) == ([0], False), command["name"]
    with pytest.raises(LookupError, match="not offered in direct messages"):
        await stack.discord.slash("pika", {"prompt": "a fox"}, guild_id=None)
    interaction = await stack.discord.slash(
        "pika", {"prompt": "a fox"}, guild_id=None, user_id=USER_ID, strict=False
    )
    callback = await interaction.response(timeout=5)
    assert callback.ephemeral
    assert callback.data["content"] == (
        "/pika works in servers only, not in direct messages: use it in a channel of a server"
        " that has the bot."
    )
    assert stack.ledger() == [] and stack.job_states() == []
    assert stack.fal.count("submit") == 0


async def test_e2e_sync_command_forces_a_sync(stack: Stack, tmp_path: Path):
    """``pikabot sync`` registers the commands again even when nothing changed."""
    before = stack.discord.sync_count(GUILD_ID)
    env = {**stack.bot.env, "PIKABOT_LOG_FORMAT": "json"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fakes.discord.launch",
        stack.discord.rest_base,
        "--",
        "sync",
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), **env},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(30):
        _, err = await process.communicate()
    assert process.returncode == 0, err.decode()[-2000:]
    assert stack.discord.sync_count(GUILD_ID) == before + 1


async def test_e2e_restart_after_upload_finishes_the_status_and_charges_once(stack: Stack):
    """kill -9 after the video reached Discord but before the bot finished: the next start
    charges once, turns the status into "Done" without Cancel and adds 🔁 (like a fresh post)."""
    slow = stack.discord.hold("PUT /channels/{c}/messages/{m}/reactions/*")
    try:
        cursor = stack.discord.cursor()
        await pika(stack, prompt="posted, then a crash")
        result = await stack.delivered(cursor)
        await slow.wait_arrived()  # the post is in the channel; the bot waits on Discord
        await stack.bot.kill()
        assert stack.job_states() == ["posting"]
        await stack.bot.start()
        await stack.discord.wait_for_message(  # after the killed process's lease ran out
            lambda m: "Done" in description(m) and footer(m) == footer(result),
            channel_id=CHANNEL_ID,
            timeout=60,
            after=cursor,
            kinds=("message_update",),
        )
        status = next(
            m
            for m in stack.discord.messages(CHANNEL_ID)
            if m.id != result.id and footer(m) == footer(result)
        )
        assert "Done" in description(status)
        assert status.components == []
        assert stack.discord.bot_id in stack.discord.get_message(result.id).reactions["🔁"]
        async with asyncio.timeout(10):  # the charge follows the status edit: poll, bounded
            while stack.job_states() != ["delivered"]:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    finally:
        slow.release()
    assert [k for k, _ in stack.ledger()] == ["reserve", "charge"]
    assert len([m for m in stack.discord.messages(CHANNEL_ID) if m.attachments]) == 1
    assert stack.job_column("result_message_id") == [result.id]
