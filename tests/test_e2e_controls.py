"""Reruns, buttons, cancel, delete and history on the real bot process, across restarts,
and the Discord faults it must ride out (429, 500, 413, expired interaction tokens)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fakes.discord import ADMIN_ID, CHANNEL_ID, USER_ID
from tests.fakes.fal import Reply
from tests.fakes.stack import Stack, description, running_stack

pytestmark = pytest.mark.e2e


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with running_stack(tmp_path, PIKABOT_DEFAULT_ALLOWANCE="500") as running:
        yield running


def custom_ids(message) -> list[str]:
    return [c["custom_id"] for row in message.components for c in row.get("components", [])]


async def settled(stack: Stack, count: int) -> None:
    """Wait (bounded) until ``count`` jobs are terminal in the database."""
    # The database belongs to another process: there is no event to wait on, so poll (bounded).
    async with asyncio.timeout(10):
        while sum(s in ("delivered", "failed", "cancelled") for s in stack.job_states()) < count:  # noqa: ASYNC110
            await asyncio.sleep(0.05)


async def test_e2e_result_has_rerun_reaction_and_buttons(stack: Stack):
    """A posted video carries 🔁 and Rerun / 1080p / 10-second / Delete buttons."""
    cursor = stack.discord.cursor()
    await stack.pika(prompt="a lighthouse", seed=11)
    result = await stack.delivered(cursor)
    await stack.discord.wait_for(lambda e: e.kind == "reaction_add", timeout=10, after=cursor)
    assert "🔁" in stack.discord.get_message(result.id).reactions
    job_id = stack.job_column("id")[0]
    assert custom_ids(result) == [
        f"pikabot:rerun:{job_id}:new",
        f"pikabot:rerun:{job_id}:hd",
        f"pikabot:rerun:{job_id}:long",
        f"pikabot:delete:{job_id}",
    ]


async def test_e2e_reaction_rerun_works_after_restart(stack: Stack):
    """🔁 by another member on a video from before a restart runs it again for that member."""
    cursor = stack.discord.cursor()
    await stack.pika(prompt="a lighthouse", seed=11)
    first = await stack.delivered(cursor)
    await settled(stack, 1)
    await stack.restart()
    cursor = stack.discord.cursor()
    await stack.discord.react(CHANNEL_ID, first.id, "🔁", ADMIN_ID)
    second = await stack.delivered(cursor)
    assert second.id != first.id
    assert f"<@{ADMIN_ID}>" in second.content
    await settled(stack, 2)
    assert stack.job_column("user_id") == [USER_ID, ADMIN_ID]
    seeds = [body.json["seed"] for body in stack.fal.recorded("submit")]
    assert seeds[0] == 11 and seeds[1] != 11
    status = [m for m in stack.discord.messages(CHANNEL_ID) if "Rerun of" in str(m.embeds)]
    assert len(status) == 1
    assert [k for k, _ in stack.ledger()] == ["reserve", "charge", "reserve", "charge"]


async def test_e2e_bot_ignores_its_own_reaction(stack: Stack):
    """The bot's own 🔁 (which comes back as an event) starts nothing."""
    cursor = stack.discord.cursor()
    await stack.pika(prompt="a lighthouse")
    result = await stack.delivered(cursor)
    await stack.discord.wait_for(lambda e: e.kind == "reaction_add", timeout=10, after=cursor)
    # A member's 🔁 after the bot's own: once it has run, the bot's reaction has been handled
    # too (the gateway delivers them in order), so a wrong rerun would be there by then.
    await settled(stack, 1)
    await stack.discord.react(CHANNEL_ID, result.id, "🔁", ADMIN_ID)
    await settled(stack, 2)
    assert stack.job_column("user_id") == [USER_ID, ADMIN_ID]
    assert stack.fal.count("submit") == 2


async def test_e2e_buttons_work_after_restart(stack: Stack):
    """'Same seed in 1080p' on a message from before a restart submits seed and 1080p."""
    cursor = stack.discord.cursor()
    await stack.pika(prompt="a lighthouse", seed=11)
    first = await stack.delivered(cursor)
    await settled(stack, 1)
    await stack.restart()
    job_id = stack.job_column("id")[0]
    cursor = stack.discord.cursor()
    click = await stack.discord.click(first.id, f"pikabot:rerun:{job_id}:hd", user_id=USER_ID)
    answer = await click.answer(timeout=10)
    assert answer.ephemeral and "45 credits reserved" in answer.data["content"]
    await stack.delivered(cursor)
    second = stack.fal.recorded("submit")[1].json
    assert (second["seed"], second["resolution"]) == (11, "1080p")


async def test_e2e_cancel_button_refunds(stack: Stack):
    """Cancel on a queued job: fal is asked to cancel, credits come back, the status says so."""
    stack.fal.queue_positions = tuple(range(200, 0, -1))
    stack.fal.stream_interval = 0.1
    cursor = stack.discord.cursor()
    await stack.pika(prompt="never mind")
    status = await stack.discord.wait_for_message(
        lambda m: "Queued" in description(m),
        channel_id=CHANNEL_ID,
        timeout=20,
        after=cursor,
        kinds=("message_create", "message_update"),
    )
    job_id = stack.job_column("id")[0]
    stranger = await stack.discord.add_member("carol")
    refused = await stack.discord.click(status.id, f"pikabot:cancel:{job_id}", user_id=stranger)
    assert "Only the member" in (await refused.response(timeout=5)).data["content"]
    click = await stack.discord.click(status.id, f"pikabot:cancel:{job_id}", user_id=USER_ID)
    await click.response(timeout=5)
    await stack.discord.wait_for_message(
        lambda m: m.id == status.id and "Cancelled" in str(m.embeds),
        timeout=15,
        after=cursor,
        kinds=("message_update",),
    )
    assert stack.job_states() == ["cancelled"]
    assert stack.fal.count("cancel") == 1
    assert [k for k, _ in stack.ledger()] == ["reserve", "refund"]
    assert custom_ids(stack.discord.get_message(status.id)) == []


async def test_e2e_delete_button_for_requester_only(stack: Stack):
    """Delete removes the result for its requester; another member is refused."""
    cursor = stack.discord.cursor()
    await stack.pika(prompt="short-lived")
    result = await stack.delivered(cursor)
    job_id = stack.job_column("id")[0]
    stranger = await stack.discord.add_member("dave")
    refused = await stack.discord.click(result.id, f"pikabot:delete:{job_id}", user_id=stranger)
    assert (await refused.response(timeout=5)).ephemeral
    assert not stack.discord.get_message(result.id).deleted
    click = await stack.discord.click(result.id, f"pikabot:delete:{job_id}", user_id=USER_ID)
    await click.response(timeout=5)
    await stack.discord.wait_for(
        lambda e: e.kind == "message_delete" and e.message.id == result.id, timeout=10
    )


async def test_e2e_history_lists_jobs(stack: Stack):
    """/history shows a member's jobs with state and cost, privately."""
    cursor = stack.discord.cursor()
    await stack.pika(prompt="for the history books")
    await stack.delivered(cursor)
    await settled(stack, 1)
    interaction = await stack.discord.slash("history", {}, channel_id=CHANNEL_ID, user_id=USER_ID)
    answer = await interaction.response(timeout=5)
    assert answer.ephemeral
    text = answer.data["embeds"][0]["description"]
    assert "delivered" in text and "20 cr" in text and "for the history books" in text


async def test_e2e_discord_429_and_500_are_ridden_out(stack: Stack):
    """A 429 and a 500 on posting are retried; the video still arrives once."""
    stack.discord.fail("POST /channels/{id}/messages", 429, times=1, retry_after=0.2)
    cursor = stack.discord.cursor()
    await stack.pika(prompt="through the storm")
    stack.discord.fail("POST /channels/{id}/messages", 500, times=1)
    await stack.delivered(cursor)
    await settled(stack, 1)
    assert stack.job_states() == ["delivered"]
    assert len([m for m in stack.discord.messages(CHANNEL_ID) if m.attachments]) == 1


async def test_e2e_upload_refused_413_falls_back_to_link(stack: Stack):
    """Discord refusing the upload as too large (413) gets a link instead, saying why."""
    stack.discord.refuse_uploads_over(100)  # smaller than the guild's advertised 10 MiB
    cursor = stack.discord.cursor()
    await stack.pika(prompt="a big one")
    linked = await stack.discord.wait_for_message(
        lambda m: "/files/" in m.content, channel_id=CHANNEL_ID, timeout=20, after=cursor
    )
    assert "too large" in str(linked.embeds)
    await settled(stack, 1)
    assert stack.job_states() == ["delivered"]


async def test_e2e_expired_interaction_token_does_not_matter(stack: Stack):
    """With every interaction token dead at once, status and result still arrive."""
    stack.discord.interaction_token_ttl = 0.0
    cursor = stack.discord.cursor()
    interaction = await stack.discord.slash(
        "pika", {"prompt": "long job"}, channel_id=CHANNEL_ID, user_id=USER_ID
    )
    await interaction.response(timeout=5)  # deferred in time; its token is already dead
    stack.discord.expire_interactions()
    await stack.delivered(cursor)
    await stack.discord.wait_for_message(
        lambda m: "Done" in description(m),
        channel_id=CHANNEL_ID,
        timeout=10,
        after=cursor,
        kinds=("message_update",),
    )


async def test_e2e_moderator_restricts_reruns_to_requester(stack: Stack):
    """After /quota reruns requester, another member's 🔁 is refused and nothing is reserved."""
    cursor = stack.discord.cursor()
    await stack.pika(prompt="mine only")
    result = await stack.delivered(cursor)
    await settled(stack, 1)
    setting = await stack.discord.slash(
        "quota reruns", {"who": "requester"}, channel_id=CHANNEL_ID, user_id=ADMIN_ID
    )
    answer = await setting.response(timeout=5)
    assert "only each video's requester" in answer.data["content"]
    stranger = await stack.discord.add_member("erin")
    cursor = stack.discord.cursor()
    await stack.discord.react(CHANNEL_ID, result.id, "🔁", stranger)
    notice = await stack.discord.wait_for_message(
        lambda m: f"<@{stranger}>" in m.content, channel_id=CHANNEL_ID, timeout=10, after=cursor
    )
    assert "only the member who made a video" in notice.content
    assert stack.fal.count("submit") == 1
    assert [k for k, _ in stack.ledger()] == ["reserve", "charge"]
    job_id = stack.job_column("id")[0]
    click = await stack.discord.click(result.id, f"pikabot:rerun:{job_id}:new", user_id=USER_ID)
    assert "credits reserved" in (await click.answer(timeout=10)).data["content"]


async def test_e2e_missing_channel_permission_is_explained_before_reserving(stack: Stack):
    """Without Attach Files in the channel, /pika says which permission is missing; no charge."""
    from tests.fakes.discord.server import BOT_ROLE_ID, GUILD_ID
    from tests.fakes.discord.state import ATTACH_FILES

    guild = stack.discord.guild()
    for role_id in (GUILD_ID, BOT_ROLE_ID):
        guild.roles[role_id].permissions &= ~ATTACH_FILES
    _, answer = await stack.pika(prompt="nowhere to post")
    assert answer.ephemeral
    assert "attach files" in answer.data["content"]
    assert stack.ledger() == [] and stack.fal.count("submit") == 0


@pytest.mark.parametrize(
    ("status", "code"), [(404, 10008), (400, 30046)], ids=["deleted", "too-old-to-edit"]
)
async def test_e2e_unusable_status_message_is_replaced(stack: Stack, status: int, code: int):
    """A status message that is gone or may no longer be edited is replaced by a new one."""
    stack.fal.queue_positions = (3, 2, 1)
    stack.fal.stream_interval = 0.2
    cursor = stack.discord.cursor()
    await stack.pika(prompt="keep me posted")
    first = await stack.discord.wait_for_message(
        lambda m: bool(m.embeds) and "job" in str(m.embeds), channel_id=CHANNEL_ID, after=cursor
    )
    stack.discord.fail("PATCH /channels/{id}/messages/{id}", status, times=1, code=code)
    await stack.delivered(cursor)
    await settled(stack, 1)
    statuses = [
        m
        for m in stack.discord.messages(CHANNEL_ID)
        if m.embeds and not m.attachments and m.author.id == stack.discord.bot_id
    ]
    assert len(statuses) == 2 and statuses[0].id == first.id
    assert stack.job_column("status_message_id") == [statuses[1].id]
    assert "Done" in description(statuses[1])


async def test_e2e_rerun_reaction_right_after_the_video_appears_is_not_lost(stack: Stack):
    """🔁 added while the bot still talks to Discord about the fresh post starts the rerun.

    Discord is held on the bot's own 🔁 (the first call after the post), so the member's 🔁
    arrives before the bot has finished; the result message id must already be stored.
    """
    slow = stack.discord.hold("PUT /channels/{c}/messages/{m}/reactions/*")
    try:
        cursor = stack.discord.cursor()
        await stack.pika(prompt="a lighthouse", seed=11)
        first = await stack.delivered(cursor)
        await slow.wait_arrived()
        cursor = stack.discord.cursor()
        await stack.discord.react(CHANNEL_ID, first.id, "🔁", ADMIN_ID)
        # The database and fal belong to the bot: poll (bounded) for the rerun's submit.
        async with asyncio.timeout(15):
            while stack.fal.count("submit") < 2:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    finally:
        slow.release()
    second = await stack.delivered(cursor)
    assert f"<@{ADMIN_ID}>" in second.content
    await settled(stack, 2)
    assert stack.job_column("user_id") == [USER_ID, ADMIN_ID]
    assert stack.job_column("result_message_id") == [first.id, second.id]


async def test_e2e_cancel_refused_by_the_provider_says_why_and_refunds_nothing(stack: Stack):
    """fal answers that it cannot cancel: the member is told why, the clip goes on, charged."""
    stack.fal.queue_positions = tuple(range(200, 0, -1))
    stack.fal.stream_interval = 0.1
    stack.fal.cancel_replies.append(Reply(400, {"status": "ALREADY_COMPLETED"}))
    cursor = stack.discord.cursor()
    await stack.pika(prompt="too late to stop")
    status = await stack.discord.wait_for_message(
        lambda m: "Queued" in description(m),
        channel_id=CHANNEL_ID,
        timeout=20,
        after=cursor,
        kinds=("message_create", "message_update"),
    )
    job_id = stack.job_column("id")[0]
    click = await stack.discord.click(status.id, f"pikabot:cancel:{job_id}", user_id=USER_ID)
    await click.response(timeout=5)
    await stack.discord.wait_for(
        lambda e: e.kind == "followup" and e.interaction is click, timeout=10, after=cursor
    )
    answer = click.followups[0]
    assert answer.flags & 64  # ephemeral
    assert "could not stop" in answer.content and "charged" in answer.content
    assert stack.fal.count("cancel") == 1
    stack.fal.queue_positions = ()  # fal finishes the clip it would not cancel
    await stack.delivered(cursor)
    await settled(stack, 1)
    assert stack.job_states() == ["delivered"]
    assert [k for k, _ in stack.ledger()] == ["reserve", "charge"]
