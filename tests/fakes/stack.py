"""A whole loopback world for end-to-end tests: DiscordDouble + FakeFal + the real bot process."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.fakes.bot_process import BotProcess
from tests.fakes.discord import CHANNEL_ID, GUILD_ID, USER_ID, DiscordDouble, Message
from tests.fakes.discord.state import Callback, Interaction
from tests.fakes.fal import FakeFal

FAL_KEY = "fal-e2e-key"


@dataclass
class Stack:
    """The running world, and read-only views of the bot's database."""

    discord: DiscordDouble
    fal: FakeFal
    bot: BotProcess
    db: Path

    def ledger(self) -> list[tuple[str, int]]:
        """(kind, amount) of every ledger row, in order."""
        with sqlite3.connect(self.db) as db:
            return list(db.execute("SELECT kind, amount FROM ledger ORDER BY id"))

    def job_states(self) -> list[str]:
        """Every job's state, in order."""
        with sqlite3.connect(self.db) as db:
            return [row[0] for row in db.execute("SELECT state FROM jobs ORDER BY id")]

    def job_column(self, column: str) -> list[object]:
        """One column of every job row, in order."""
        with sqlite3.connect(self.db) as db:
            return [row[0] for row in db.execute(f"SELECT {column} FROM jobs ORDER BY id")]

    async def restart(self) -> None:
        """SIGTERM the bot and start it again on the same database."""
        await self.bot.stop()
        await self.bot.start()
        await self.discord.wait_for(
            lambda e: e.kind == "gateway_ready", timeout=20, after=self.discord.cursor() - 1
        )

    async def pika(
        self, *, user_id: int = USER_ID, **options: object
    ) -> tuple[Interaction, Callback]:
        """``/pika`` as a member; returns the interaction and the bot's private answer (after a
        deferred callback, what it was edited into)."""
        interaction = await self.discord.slash(
            "pika", options, channel_id=CHANNEL_ID, user_id=user_id
        )
        return interaction, await interaction.answer(timeout=10)

    async def delivered(self, after: int, timeout: float = 30.0) -> Message:  # noqa: ASYNC109
        """The next message with an attachment posted after event index ``after``."""
        return await self.discord.wait_for_message(
            lambda m: bool(m.attachments), channel_id=CHANNEL_ID, timeout=timeout, after=after
        )


def footer(message: Message) -> str:
    """The footer text of a message's first embed."""
    return message.embeds[0].get("footer", {}).get("text", "") if message.embeds else ""


def description(message: Message) -> str:
    """The description of a message's first embed."""
    return message.embeds[0].get("description", "") if message.embeds else ""


@contextlib.asynccontextmanager
async def running_stack(
    tmp_path: Path,
    *,
    discord_knobs: Mapping[str, Any] | None = None,
    dev_guild: bool = True,
    **env_overrides: str,
) -> AsyncIterator[Stack]:
    """Start the world; on exit stop the bot and check nothing secret reached its log.

    ``discord_knobs`` are the loopback Discord's constructor options (say, shards);
    ``dev_guild=False`` syncs the commands globally instead of to ``GUILD_ID`` (for tests
    with several guilds).
    """
    knobs = dict(discord_knobs or {})
    async with (
        DiscordDouble(**knobs) as discord,
        FakeFal(key=FAL_KEY, stream_interval=0.05) as fal,
    ):
        db = tmp_path / "pikabot.sqlite3"
        env = {
            "DISCORD_TOKEN": discord.token,
            "FAL_KEY": FAL_KEY,
            "FAL_QUEUE_URL": fal.url,
            "PIKABOT_DATABASE": str(db),
            **({"PIKABOT_DEV_GUILD_ID": str(GUILD_ID)} if dev_guild else {}),
            "PIKABOT_STATUS_EDIT_INTERVAL": "0.1",
            "PIKABOT_POLL_INTERVAL": "0.1",
            "PIKABOT_DEFAULT_ALLOWANCE": "100",
            **env_overrides,
        }
        bot = BotProcess(discord.rest_base, env, tmp_path / "bot.log")
        await bot.start()
        try:
            await discord.wait_ready(timeout=20)
            await discord.wait_for(lambda e: e.kind == "command_sync", timeout=20)
            yield Stack(discord, fal, bot, db)
        finally:
            await bot.stop()
            log = bot.log()
            assert not discord.errors, discord.errors
            assert FAL_KEY not in log
            assert discord.token not in log
