"""Sharding: the real bot connects every shard Discord asks for, or the range it is given, and
serves each guild through the shard Discord routes it to."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fakes.discord import GUILD_ID, USER_ID
from tests.fakes.discord.gateway import shard_of
from tests.fakes.stack import Stack, running_stack
from tests.polling import eventually

pytestmark = pytest.mark.e2e

SECOND_GUILD_ID = 1_300_000_000_004_194_304
"""A guild on shard 1 of 2 (the default ``GUILD_ID`` is on shard 0)."""


def identified_shards(stack: Stack) -> list[list[int]]:
    """The ``shard`` of every IDENTIFY the bot sent, in order of shard id."""
    return sorted(list(i.get("shard") or [0, 1]) for i in stack.discord.gateway.identifies)


async def pika_delivered(stack: Stack, guild_id: int, prompt: str) -> None:
    """``/pika`` in the first channel of ``guild_id`` ends with a video there."""
    channel_id = next(iter(stack.discord.world.guilds[guild_id].channels))
    cursor = stack.discord.cursor()
    interaction = await stack.discord.slash(
        "pika", {"prompt": prompt}, guild_id=guild_id, channel_id=channel_id, user_id=USER_ID
    )
    answer = await interaction.answer(timeout=10)
    assert "on its way" in answer.data.get("content", ""), answer.data
    await stack.discord.wait_for_message(
        lambda m: bool(m.attachments), channel_id=channel_id, timeout=30, after=cursor
    )


@pytest.fixture
async def two_shards(tmp_path: Path) -> AsyncIterator[Stack]:
    """Discord recommends two shards; the bot is given no shard settings."""
    async with running_stack(
        tmp_path, discord_knobs={"recommended_shards": 2}, dev_guild=False
    ) as running:
        yield running


def test_second_guild_is_on_shard_one():
    """The test's guilds sit on different shards of two."""
    assert (shard_of(GUILD_ID, 2), shard_of(SECOND_GUILD_ID, 2)) == (0, 1)


async def test_e2e_bot_connects_the_recommended_shards_and_serves_each(two_shards: Stack):
    """With no shard settings the bot runs every shard Discord recommends, and a guild on
    each shard gets its video."""
    stack = two_shards
    await eventually(lambda: identified_shards(stack), [[0, 2], [1, 2]], within=20)
    await stack.discord.add_guild("Second", guild_id=SECOND_GUILD_ID)
    await pika_delivered(stack, GUILD_ID, "a lighthouse on shard zero")
    await pika_delivered(stack, SECOND_GUILD_ID, "a lighthouse on shard one")
    await eventually(stack.job_states, ["delivered", "delivered"])
    assert sorted(stack.job_column("guild_id")) == sorted([GUILD_ID, SECOND_GUILD_ID])


async def test_e2e_bot_runs_only_its_shard_range(tmp_path: Path):
    """PIKABOT_SHARD_COUNT=2 and PIKABOT_SHARD_IDS=1: the process connects shard 1 only and
    serves that shard's guild."""
    async with running_stack(
        tmp_path,
        discord_knobs={"recommended_shards": 4},
        dev_guild=False,
        PIKABOT_SHARD_COUNT="2",
        PIKABOT_SHARD_IDS="1",
    ) as stack:
        assert identified_shards(stack) == [[1, 2]]
        await stack.discord.add_guild("Second", guild_id=SECOND_GUILD_ID)
        await pika_delivered(stack, SECOND_GUILD_ID, "only shard one")
        assert stack.job_column("guild_id") == [SECOND_GUILD_ID]
