"""The loopback Discord double works with an unmodified discord.py ``commands.Bot``."""

from __future__ import annotations

import asyncio
import contextlib
import io

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands

from tests.fakes.discord import (
    ADMIN_ID,
    BOT_ID,
    CHANNEL_ID,
    GUILD_ID,
    USER_ID,
    DiscordDouble,
    Upload,
    pointed_at,
)

TIMEOUT = 5.0


class RetryView(discord.ui.View):
    """A persistent view: no timeout, a fixed custom_id."""

    def __init__(self) -> None:
        super().__init__(timeout=None)

    @discord.ui.button(label="Retry", custom_id="pika:retry", style=discord.ButtonStyle.primary)
    async def retry(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await interaction.response.edit_message(content=f"retried by {interaction.user.id}")


class NoteModal(discord.ui.Modal):
    """A modal with a label-wrapped text input and a file upload, as discord.py 2.7 builds it."""

    def __init__(self, target: discord.Message, title: str = "Note on this message") -> None:
        super().__init__(title=title, custom_id=f"note:{target.id}", timeout=60)
        self.target = target
        self.text: discord.ui.TextInput[NoteModal] = discord.ui.TextInput(
            custom_id="text", max_length=20
        )
        self.file: discord.ui.FileUpload[NoteModal] = discord.ui.FileUpload(
            custom_id="file", required=False, min_values=0, max_values=2
        )
        self.add_item(discord.ui.Label(text="Your note", component=self.text))
        self.add_item(discord.ui.Label(text="A file", component=self.file))

    async def on_submit(self, interaction: discord.Interaction) -> None:
        sizes = [len(await a.read()) for a in self.file.values]
        names = [a.filename for a in self.target.attachments]
        await interaction.response.send_message(
            f"{self.text.value}|{sizes}|{names}|{self.target.content}", ephemeral=True
        )


class MiniBot(commands.Bot):
    """A tiny bot defined here (not the project's) to prove the double."""

    def __init__(self) -> None:
        super().__init__(
            command_prefix="!",
            intents=discord.Intents.default(),
            guild_ready_timeout=0.05,
        )
        self.raw_reactions: asyncio.Queue[discord.RawReactionActionEvent] = asyncio.Queue()
        self.release_late = asyncio.Event()
        self.late_result: asyncio.Future[BaseException | None] = (
            asyncio.get_running_loop().create_future()
        )

        @app_commands.command(name="ping", description="Ping")
        async def ping(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("pong", ephemeral=True)

        @app_commands.command(name="make", description="Make a video")
        async def make(
            interaction: discord.Interaction,
            prompt: str,
            seconds: int,
            image: discord.Attachment | None = None,
        ) -> None:
            size = len(await image.read()) if image is not None else 0
            await interaction.response.send_message(f"{prompt}|{seconds}|{size}")

        @app_commands.command(name="late", description="Defers, then edits when released")
        async def late(interaction: discord.Interaction) -> None:
            await interaction.response.defer(thinking=True)
            await self.release_late.wait()
            try:
                await interaction.edit_original_response(content="done")
            except discord.HTTPException as exc:
                self.late_result.set_result(exc)
            else:
                self.late_result.set_result(None)

        @app_commands.command(name="render", description="Defer, follow up with a file, edit")
        async def render(interaction: discord.Interaction) -> None:
            await interaction.response.defer(thinking=True, ephemeral=True)
            clip = discord.File(io.BytesIO(b"mp4-bytes"), "clip.mp4")
            await interaction.followup.send("here", file=clip, ephemeral=True)
            await interaction.edit_original_response(content="rendered")

        video = app_commands.Group(name="video", description="Video jobs")

        @video.command(name="status", description="Job status")
        async def status(interaction: discord.Interaction, job: int) -> None:
            await interaction.response.send_message(f"job {job} ok")

        @app_commands.context_menu(name="Note")
        async def note(interaction: discord.Interaction, message: discord.Message) -> None:
            await interaction.response.send_modal(NoteModal(message))

        @app_commands.context_menu(name="Bad note")
        async def bad_note(interaction: discord.Interaction, message: discord.Message) -> None:
            try:
                await interaction.response.send_modal(NoteModal(message, title="x" * 46))
            except discord.HTTPException as exc:
                await interaction.response.send_message(f"refused {exc.code}", ephemeral=True)

        for cmd in (ping, make, late, render, video, note, bad_note):
            self.tree.add_command(cmd, guild=discord.Object(GUILD_ID))

    async def setup_hook(self) -> None:
        self.add_view(RetryView())
        await self.tree.sync(guild=discord.Object(GUILD_ID))

    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        await self.raw_reactions.put(payload)


@pytest.fixture
async def env():
    async with DiscordDouble() as double:
        with pointed_at(double):
            bot = MiniBot()
            task = asyncio.create_task(bot.start(double.token))
            try:
                await double.wait_ready(TIMEOUT)
                await asyncio.wait_for(bot.wait_until_ready(), TIMEOUT)
                yield double, bot
            finally:
                await bot.close()
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait_for(task, TIMEOUT)
        assert double.errors == []


async def test_connects_and_sees_guild(env):
    """The bot logs in, gets READY and GUILD_CREATE, and sees the guild with its channels."""
    double, bot = env
    assert bot.user is not None and bot.user.id == BOT_ID
    assert bot.application_id == double.application_id
    guild = bot.get_guild(GUILD_ID)
    assert guild is not None and guild.name == "Pika Test Guild"
    assert {c.name for c in guild.text_channels} == {"general", "videos"}
    assert guild.me is not None and guild.me.id == BOT_ID
    assert guild.filesize_limit == 10 * 1024 * 1024
    identify = double.gateway.identifies[0]
    assert identify["intents"] == discord.Intents.default().value
    assert [r.path for r in double.requests[:2]] == ["/users/@me", "/oauth2/applications/@me"]


async def test_sync_records_commands_with_attachment_option(env):
    """tree.sync does one guild bulk overwrite; the double keeps typed option definitions."""
    double, _ = env
    assert double.sync_count(GUILD_ID) == 1
    make = next(c for c in double.commands(GUILD_ID) if c["name"] == "make")
    types = {o["name"]: (o["type"], o.get("required", False)) for o in make["options"]}
    assert types == {"prompt": (3, True), "seconds": (4, True), "image": (11, False)}


async def test_slash_ping_is_answered_ephemerally(env):
    """/ping dispatched by the double gets a type-4 callback with the ephemeral flag."""
    double, _ = env
    interaction = await double.slash("ping", {}, user_id=USER_ID)
    callback = await interaction.response(TIMEOUT)
    assert callback.type == 4
    assert callback.ephemeral
    assert callback.data["content"] == "pong"
    assert interaction.original is not None and interaction.original.ephemeral


async def test_slash_with_attachment_option(env):
    """Typed options and a resolved attachment reach the command; the bot downloads the file."""
    double, _ = env
    interaction = await double.slash(
        "make",
        {"prompt": "a cat", "seconds": 5},
        attachments={"image": Upload("cat.png", b"\x89PNG" + b"0" * 96, "image/png")},
        user_id=ADMIN_ID,
    )
    callback = await interaction.response(TIMEOUT)
    assert callback.type == 4
    assert not callback.ephemeral
    assert callback.data["content"] == "a cat|5|100"
    with pytest.raises(LookupError):
        await double.slash("make", {"prompt": "x", "seconds": 1, "colour": "red"})


async def test_channel_messages_embed_edit_and_file(env):
    """Sending with an embed, editing it, and uploading a file are all stored by the double."""
    double, bot = env
    channel = bot.get_channel(CHANNEL_ID)
    sent = await channel.send("status", embed=discord.Embed(title="Queued"))
    stored = double.get_message(sent.id)
    assert stored is not None and stored.embeds[0]["title"] == "Queued"
    await sent.edit(content="status", embed=discord.Embed(title="Rendering 50%"))
    assert stored.embeds[0]["title"] == "Rendering 50%"
    assert len(stored.history) == 1 and stored.edited_timestamp is not None
    data = bytes(range(256)) * 40
    with_file = await channel.send("video", file=discord.File(io.BytesIO(data), "clip.mp4"))
    att = double.get_message(with_file.id).attachments[0]
    assert att.filename == "clip.mp4" and att.data == data
    assert await with_file.attachments[0].read() == data
    assert [m.id for m in double.messages(CHANNEL_ID)] == [sent.id, with_file.id]


async def test_file_over_upload_limit_gets_413(env):
    """A file above the guild's per-attachment limit fails with HTTP 413 code 40005."""
    double, bot = env
    double.set_upload_limit(1024)
    channel = bot.get_channel(CHANNEL_ID)
    with pytest.raises(discord.HTTPException) as info:
        await channel.send(file=discord.File(io.BytesIO(b"x" * 2048), "big.mp4"))
    assert info.value.status == 413 and info.value.code == 40005
    assert double.messages(CHANNEL_ID) == []


async def test_reactions_both_ways(env):
    """The bot's reaction is stored; a member's reaction arrives as a raw event with member."""
    double, bot = env
    sent = await bot.get_channel(CHANNEL_ID).send("react here")
    await sent.add_reaction("👍")
    assert double.get_message(sent.id).reaction_users("👍") == {BOT_ID}
    own = await asyncio.wait_for(bot.raw_reactions.get(), TIMEOUT)
    assert own.user_id == BOT_ID
    await double.react(CHANNEL_ID, sent.id, "🎬", user_id=USER_ID)
    raw = await asyncio.wait_for(bot.raw_reactions.get(), TIMEOUT)
    assert (raw.user_id, raw.message_id, str(raw.emoji)) == (USER_ID, sent.id, "🎬")
    assert raw.member is not None and raw.member.id == USER_ID
    assert raw.guild_id == GUILD_ID


async def test_button_click_routes_to_persistent_view(env):
    """A click on a persistent button reaches the view, which updates the message (type 7)."""
    double, bot = env
    sent = await bot.get_channel(CHANNEL_ID).send("failed", view=RetryView())
    interaction = await double.click(sent.id, "pika:retry", user_id=USER_ID)
    callback = await interaction.response(TIMEOUT)
    assert callback.type == 7
    assert double.get_message(sent.id).content == f"retried by {USER_ID}"


async def test_expired_token_gives_401_50027(env):
    """After the interaction token expires, edit_original_response fails with 401/50027."""
    double, bot = env
    interaction = await double.slash("late")
    callback = await interaction.response(TIMEOUT)
    assert callback.type == 5
    assert interaction.original is not None and interaction.original.loading
    interaction.expire()
    bot.release_late.set()
    error = await asyncio.wait_for(asyncio.shield(bot.late_result), TIMEOUT)
    assert isinstance(error, discord.HTTPException)
    assert error.status == 401 and error.code == 50027


async def test_scripted_429_is_retried(env):
    """A scripted 429 on message create is retried by discord.py and the message arrives."""
    double, bot = env
    fault = double.fail("POST /channels/{id}/messages", 429, times=1, retry_after=0.1)
    cursor = double.cursor()
    sent = await bot.get_channel(CHANNEL_ID).send("after the limit")
    message = await double.wait_for_message(lambda m: m.id == sent.id, TIMEOUT, after=cursor)
    assert message.content == "after the limit"
    posts = double.requests_to("POST", f"/channels/{CHANNEL_ID}/messages")
    assert [r.status for r in posts] == [429, 200]
    assert posts[1].at - posts[0].at >= 0.1
    assert fault.hits == 1


async def test_auth_and_unknown_routes():
    """Bot routes need the bot token (401); unknown routes are 404 and recorded."""
    async with DiscordDouble() as double, aiohttp.ClientSession() as http:
        async with http.get(f"{double.rest_base}/users/@me") as resp:
            assert resp.status == 401
        headers = {"Authorization": f"Bot {double.token}"}
        async with http.get(f"{double.rest_base}/no/such/route", headers=headers) as resp:
            assert resp.status == 404
            assert (await resp.json())["message"] == "404: Not Found"
        assert [r.path for r in double.unknown_routes] == ["/no/such/route"]


async def test_defer_followup_with_file_and_edit_original(env):
    """Deferred (type 5) answer, a follow-up with a file, then an edit of @original."""
    double, _ = env
    interaction = await double.slash("render")
    callback = await interaction.response(TIMEOUT)
    assert callback.type == 5 and callback.ephemeral
    await double.wait_for(
        lambda e: e.kind == "message_update" and e.message.id == interaction.original_message_id,
        TIMEOUT,
    )
    original = interaction.original
    assert original.content == "rendered" and not original.loading and original.ephemeral
    (followup,) = interaction.followups
    assert followup.content == "here" and followup.attachments[0].data == b"mp4-bytes"


async def test_subcommand_and_reconnect_resume(env):
    """Subcommands resolve, and after op 7 RECONNECT the bot RESUMEs and still works."""
    double, _ = env
    interaction = await double.slash("video status", {"job": 42})
    assert (await interaction.response(TIMEOUT)).data["content"] == "job 42 ok"
    await double.reconnect()
    await double.wait_for(lambda e: e.kind == "gateway_resumed", TIMEOUT)
    interaction = await double.slash("ping")
    assert (await interaction.response(TIMEOUT)).type == 4
    assert len(double.gateway.identifies) == 1


async def test_server_error_is_retried(env):
    """A scripted 500 is retried by discord.py (after its 1 s back-off)."""
    double, bot = env
    double.fail("POST /channels/{id}/messages", 500, times=1)
    sent = await bot.get_channel(CHANNEL_ID).send("after a 500")
    posts = double.requests_to("POST", f"/channels/{CHANNEL_ID}/messages")
    assert [r.status for r in posts] == [500, 200]
    assert double.get_message(sent.id).content == "after a 500"


async def test_message_context_menu_and_modal_round_trip(env):
    """A message menu gets its target (with attachments); its modal's text and uploads come
    back in the submission, the files readable from the double's CDN."""
    double, _ = env
    menus = [c for c in double.commands(GUILD_ID) if c.get("type") == 3]
    assert {c["name"] for c in menus} == {"Note", "Bad note"}
    target = await double.say("hello", files=[Upload("clip.mp4", b"\x00" * 30, "video/mp4")])
    opened = await double.context_menu("Note", target.id)
    modal = await opened.response(TIMEOUT)
    assert modal.type == 9 and modal.data["title"] == "Note on this message"
    assert [c["type"] for c in modal.data["components"]] == [18, 18]
    with pytest.raises(ValueError, match="required"):
        await double.submit_modal(opened, {})
    with pytest.raises(LookupError, match="no input"):
        await double.submit_modal(opened, {"text": "x", "colour": "red"})
    with pytest.raises(ValueError, match="takes 0-2 files"):
        await double.submit_modal(opened, {"text": "x", "file": [Upload("a", b"1")] * 3})
    submitted = await double.submit_modal(
        opened, {"text": "nice", "file": [Upload("a.bin", b"12345"), Upload("b.bin", b"12")]}
    )
    answer = await submitted.response(TIMEOUT)
    assert answer.ephemeral
    assert answer.data["content"] == "nice|[5, 2]|['clip.mp4']|hello"
    with pytest.raises(LookupError, match="no message command"):
        await double.context_menu("Missing", target.id)


async def test_modal_discord_would_refuse_gets_50035(env):
    """A modal whose title is over 45 characters is refused like Discord does (400, 50035)."""
    double, _ = env
    target = await double.say("hello")
    opened = await double.context_menu("Bad note", target.id)
    answer = await opened.response(TIMEOUT)
    assert answer.data["content"] == "refused 50035"
