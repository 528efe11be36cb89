"""The modals the context menus open: "Add to this video" (Pikadditions) and "Swap in this
video" (Pikaswaps).

A modal carries the source video it was opened on; what the member enters (a prompt, the
region, and the image as an upload or a web address) goes through the same launcher path as
the slash commands. Each modal has its own ``custom_id`` (two members may open one on the
same video at once) and lives in this process for :data:`MODAL_SECONDS`.
Choice: a modal open across a restart of the bot is not answered (discord.py keeps modals in
memory); the member's client says the interaction failed and they open it again, costing
nothing, since nothing is reserved before the submit.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

import discord
import structlog

from bot.images import RemoteImage
from bot.models import NEGATIVE_PROMPT_MAX_CHARS, PROMPT_MAX_CHARS
from bot.tool_requests import ToolOptions
from bot.tools import REGION_MAX_CHARS, Tool
from bot.videos import RemoteVideo
from cogs.errors import GENERIC, reply_privately
from cogs.launcher import JobLauncher, answer_privately, remote_images
from cogs.tool_sources import typed_image

if TYPE_CHECKING:
    from bot.app import PikaBot

log = structlog.get_logger(__name__)

MODAL_SECONDS = 15 * 60
"""Choice: as long as the interaction token lives; a modal left open longer is dropped."""
URL_MAX_CHARS = 1000
ONE_IMAGE = "Give the image as an upload or as a web address, not both."


class _ToolModal(discord.ui.Modal):
    """What both modals share: the source video, the image inputs, the answer path."""

    def __init__(
        self, bot: PikaBot, tool: Tool, title: str, video: RemoteVideo, message_url: str
    ) -> None:
        super().__init__(
            title=title,
            timeout=MODAL_SECONDS,
            custom_id=f"pikabot:{tool.value}:{secrets.token_hex(8)}",
        )
        self.bot = bot
        self.tool = tool
        self.video = video
        self.message_url = message_url
        self.upload: discord.ui.FileUpload[_ToolModal] = discord.ui.FileUpload(
            custom_id="image", required=False, min_values=0, max_values=1
        )
        self.image_url: discord.ui.TextInput[_ToolModal] = discord.ui.TextInput(
            custom_id="image_url",
            required=False,
            max_length=URL_MAX_CHARS,
            placeholder="https://…",
        )

    def images(self) -> list[RemoteImage]:
        """The image the member gave: the upload, or the typed address (never both)."""
        typed = self.image_url.value.strip() if self.image_url.value else ""
        if self.upload.values and typed:
            raise ValueError(ONE_IMAGE)
        if self.upload.values:
            return list(remote_images(self.upload.values))
        return [typed_image(typed)] if typed else []

    async def start(self, interaction: discord.Interaction, options: ToolOptions) -> None:
        """Hand the submission to the launcher (which checks it all before reserving)."""
        try:
            images = self.images()
        except ValueError as refused:
            await answer_privately(interaction, str(refused))
            return
        await JobLauncher(self.bot).from_tool(
            interaction,
            options,
            images=images,
            video=self.video,
            video_message_url=self.message_url,
        )

    async def on_error(  # type: ignore[override]  # a Modal's on_error has no item
        self, interaction: discord.Interaction, error: Exception, /
    ) -> None:
        """A failure is the member's private apology; the details go to the log."""
        log.error("modal.failed", tool=self.tool.value, exc_info=error)
        await reply_privately(interaction, GENERIC)


class AddModal(_ToolModal):
    """Pikadditions on a posted video: what to add (an image) and, optionally, how."""

    def __init__(self, bot: PikaBot, video: RemoteVideo, message_url: str) -> None:
        super().__init__(bot, Tool.PIKADDITIONS, "Add to this video", video, message_url)
        self.prompt: discord.ui.TextInput[AddModal] = discord.ui.TextInput(
            custom_id="prompt",
            style=discord.TextStyle.paragraph,
            required=False,
            max_length=PROMPT_MAX_CHARS,
            placeholder="How it joins the scene, e.g. a cat jumps onto the sofa",
        )
        self.negative: discord.ui.TextInput[AddModal] = discord.ui.TextInput(
            custom_id="negative_prompt",
            required=False,
            max_length=NEGATIVE_PROMPT_MAX_CHARS,
        )
        self.add_item(
            discord.ui.Label(
                text="What to add (an image)",
                description="Upload a PNG, JPEG or WebP, or give its address below",
                component=self.upload,
            )
        )
        self.add_item(discord.ui.Label(text="…or its web address", component=self.image_url))
        self.add_item(discord.ui.Label(text="Prompt (optional)", component=self.prompt))
        self.add_item(discord.ui.Label(text="Avoid (optional)", component=self.negative))

    async def on_submit(self, interaction: discord.Interaction, /) -> None:
        """Start the Pikadditions job."""
        await self.start(
            interaction,
            ToolOptions(
                Tool.PIKADDITIONS,
                prompt=self.prompt.value,
                negative_prompt=self.negative.value,
            ),
        )


class SwapModal(_ToolModal):
    """Pikaswaps on a posted video: what to replace, and what replaces it."""

    def __init__(self, bot: PikaBot, video: RemoteVideo, message_url: str) -> None:
        super().__init__(bot, Tool.PIKASWAPS, "Swap in this video", video, message_url)
        self.region: discord.ui.TextInput[SwapModal] = discord.ui.TextInput(
            custom_id="region",
            required=True,
            max_length=REGION_MAX_CHARS,
            placeholder="e.g. the red car",
        )
        self.prompt: discord.ui.TextInput[SwapModal] = discord.ui.TextInput(
            custom_id="prompt",
            style=discord.TextStyle.paragraph,
            required=False,
            max_length=PROMPT_MAX_CHARS,
            placeholder="e.g. a white horse",
        )
        self.add_item(discord.ui.Label(text="What to replace", component=self.region))
        self.add_item(discord.ui.Label(text="What goes there (prompt)", component=self.prompt))
        self.add_item(
            discord.ui.Label(
                text="…or an image of it",
                description="Upload a PNG, JPEG or WebP, or give its address below",
                component=self.upload,
            )
        )
        self.add_item(discord.ui.Label(text="…or its web address", component=self.image_url))

    async def on_submit(self, interaction: discord.Interaction, /) -> None:
        """Start the Pikaswaps job."""
        await self.start(
            interaction,
            ToolOptions(Tool.PIKASWAPS, prompt=self.prompt.value, region=self.region.value),
        )
