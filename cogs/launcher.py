"""Starting a job from Discord: ``/pika``, ``/pika-scenes``, rerun buttons and 🔁 reactions.

Every entry point goes through here, so each one answers the member the same way: a private
refusal that costs nothing, or a private acknowledgement with the cost, then one public status
message that the job's presenter keeps up to date.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

import discord
import structlog

from bot.images import RemoteImage, check_remote_images
from bot.jobs import RequestRefused
from bot.models import GenerationRequest, Job, Origin, PikaModel, Progress
from bot.policy import MemberContext
from bot.requests import RequestOptions, prepare_request
from cogs.answers_first import FIRST_ANSWERS
from cogs.embeds import status_embed
from cogs.presenter import DiscordJobObserver
from cogs.views import status_view

if TYPE_CHECKING:
    from bot.app import PikaBot

log = structlog.get_logger(__name__)

REQUIRED_CHANNEL_PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    embed_links=True,
    attach_files=True,
    read_message_history=True,
    add_reactions=True,
)
NOTICE_SECONDS = 20.0
"""How long a public notice for a reaction (which has no private reply) stays up."""


def missing_permissions(granted: discord.Permissions) -> list[str]:
    """The channel permissions the bot needs but lacks, in words."""
    return [
        name.replace("_", " ")
        for name, needed in REQUIRED_CHANNEL_PERMISSIONS
        if needed and not getattr(granted, name)
    ]


def remote_images(attachments: Sequence[discord.Attachment]) -> list[RemoteImage]:
    """What the core needs to check a member's attachments: name, URL and size.

    Discord's CDN URL is signed and expires after a while; the provider fetches it at once,
    and it is kept only in the job row, never logged.
    """
    return [RemoteImage(a.filename, a.url, a.size) for a in attachments]


def origin_of(interaction: discord.Interaction) -> Origin:
    """Where an interaction came from."""
    assert interaction.guild_id is not None and interaction.channel_id is not None
    return Origin(
        guild_id=interaction.guild_id,
        channel_id=interaction.channel_id,
        user_id=interaction.user.id,
        user_name=interaction.user.display_name,
    )


def member_of(
    user: discord.abc.User,
    guild_id: int,
    channel: object,
    *,
    is_moderator: bool,
    rerun_of: Job | None = None,
) -> MemberContext:
    """What the guild's rules need to know about a member: roles, the channel's NSFW flag,
    whether they may moderate (Manage Server), and whose video a rerun repeats."""
    roles = getattr(user, "roles", ())
    is_nsfw = getattr(channel, "is_nsfw", None)
    return MemberContext(
        guild_id=guild_id,
        channel_id=int(getattr(channel, "id", 0)),
        user_id=user.id,
        role_ids=frozenset(role.id for role in roles),
        channel_nsfw=bool(is_nsfw()) if callable(is_nsfw) else False,
        is_moderator=is_moderator,
        rerun_of_user=rerun_of.origin.user_id if rerun_of else None,
    )


class JobLauncher:
    """Creates jobs for Discord members and shows them."""

    def __init__(self, bot: PikaBot) -> None:
        self.bot = bot
        self.services = bot.services

    def observer(self, job: Job) -> DiscordJobObserver:
        """The Discord presenter for a job (also for jobs resumed after a restart)."""
        return DiscordJobObserver(self.bot, self.services.jobs, job)

    async def from_interaction(
        self,
        interaction: discord.Interaction,
        request: GenerationRequest,
        *,
        rerun_of: Job | None = None,
        notes: Sequence[str] = (),
    ) -> Job | None:
        """Reserve and start a job for the member behind ``interaction``; None if refused.

        ``rerun_of`` is the finished job a rerun button repeats; ``notes`` (how the prompt
        was read) are added to the private acknowledgement. The interaction is deferred before
        the reserving write, so Discord's 3 s window never waits for the database.
        """
        missing = missing_permissions(interaction.app_permissions)
        if missing:
            await answer_privately(
                interaction,
                "I can't post videos in this channel: I'm missing the "
                + ", ".join(missing)
                + " permission. Ask a moderator to grant it, or use another channel.",
            )
            return None
        extra = rerun_extra(rerun_of, self.bot) if rerun_of else {}
        extra["upload_limit"] = str(interaction.filesize_limit)
        await defer_privately(interaction)
        try:
            origin = origin_of(interaction)
            member = member_of(
                interaction.user,
                origin.guild_id,
                interaction.channel or discord.Object(origin.channel_id),
                is_moderator=interaction.permissions.manage_guild,
                rerun_of=rerun_of,
            )
            job = await self.services.jobs.create(request, origin, extra=extra, member=member)
        except RequestRefused as refused:
            await answer_privately(interaction, refused.user_message)
            return None
        try:
            await self._acknowledge(interaction, job, notes)
        finally:
            # Whatever happened to the answer, the job runs: its credits are reserved.
            self.services.jobs.start(job, self.observer(job))
        return job

    async def from_options(
        self,
        interaction: discord.Interaction,
        options: RequestOptions,
        *,
        images: Sequence[discord.Attachment] = (),
        default_model: PikaModel,
    ) -> Job | None:
        """Build the request, check the images by their bytes and start it; a refusal is
        answered privately before anything is reserved. Every command that takes images
        comes through here, so each image is checked the same way.

        What needs no network is checked first and refused at once; the image check and the
        reservation wait on the network and the database, so the interaction is deferred
        before them.
        """
        remote = remote_images(images)
        try:
            prepared = prepare_request(
                dataclasses.replace(options, image_urls=tuple(i.url for i in remote)),
                default_model=default_model,
            )
        except RequestRefused as refused:
            await answer_privately(interaction, refused.user_message)
            return None
        if remote:
            await defer_privately(interaction)
            try:
                await check_remote_images(self.services.session, remote)
            except RequestRefused as refused:
                await answer_privately(interaction, refused.user_message)
                return None
        return await self.from_interaction(interaction, prepared.request, notes=prepared.notes)

    async def from_reaction(
        self, original: Job, *, user: discord.abc.User, request: GenerationRequest
    ) -> Job | None:
        """Rerun ``original`` for ``user`` who reacted 🔁 (no private reply is possible)."""
        origin = Origin(
            guild_id=original.origin.guild_id,
            channel_id=original.origin.channel_id,
            user_id=user.id,
            user_name=user.display_name,
        )
        channel = self.bot.get_partial_messageable(origin.channel_id, guild_id=origin.guild_id)
        extra = rerun_extra(original, self.bot)
        if "upload_limit" in original.extra:
            extra["upload_limit"] = original.extra["upload_limit"]
        try:
            perms = getattr(user, "guild_permissions", None)
            member = member_of(
                user,
                origin.guild_id,
                self.bot.get_channel(origin.channel_id) or discord.Object(origin.channel_id),
                is_moderator=bool(perms and perms.manage_guild),
                rerun_of=original,
            )
            job = await self.services.jobs.create(request, origin, extra=extra, member=member)
        except RequestRefused as refused:
            with contextlib.suppress(discord.HTTPException):
                await channel.send(
                    f"<@{user.id}> {refused.user_message}",
                    delete_after=NOTICE_SECONDS,
                    allowed_mentions=discord.AllowedMentions(users=[discord.Object(user.id)]),
                )
            return None
        try:
            await self._post_status(job)
        finally:
            self.services.jobs.start(job, self.observer(job))
        return job

    async def _post_status(self, job: Job) -> discord.Message | None:
        channel = self.bot.get_partial_messageable(
            job.origin.channel_id, guild_id=job.origin.guild_id
        )
        try:
            message = await channel.send(
                embed=status_embed(job, Progress(job.state)),
                view=status_view(job),
            )
        except discord.HTTPException:
            # The presenter posts a status message itself on its first update.
            log.warning("status.post_failed", job_id=job.id, exc_info=True)
            return None
        await self.services.jobs.attach_status_message(job, message.id)
        return message

    async def _acknowledge(
        self, interaction: discord.Interaction, job: Job, notes: Sequence[str] = ()
    ) -> None:
        """Answer the member privately, then post the public status message."""
        text = (
            f"Your clip is on its way: {job.cost} credits reserved, refunded if it fails."
            f" Seed {job.request.seed}."
        )
        told = "".join(f"\n{note}" for note in notes)
        try:
            await answer_privately(interaction, text + told)
        except discord.HTTPException:
            # The status message below still shows the job (its own token never expires).
            log.warning("interaction.answer_failed", job_id=job.id, exc_info=True)
        message = await self._post_status(job)
        if message is None:
            return
        with contextlib.suppress(discord.HTTPException):  # a convenience link only
            await interaction.edit_original_response(
                content=f"{text} Follow it here: {message.jump_url}{told}"
            )


async def defer_privately(interaction: discord.Interaction) -> None:
    """Answer Discord now with a private "thinking…" (the 3 s window is met whatever comes
    next); :func:`answer_privately` then replaces it. Once per interaction."""
    if not interaction.response.is_done():
        async with FIRST_ANSWERS.answering():
            await interaction.response.defer(ephemeral=True, thinking=True)
        await FIRST_ANSWERS.wait_turn()  # other members' first answers go out before our work


async def answer_privately(interaction: discord.Interaction, text: str) -> None:
    """The member's private answer: the response itself, or, after :func:`defer_privately`,
    the "thinking…" message edited into it."""
    if interaction.response.is_done():
        await interaction.edit_original_response(content=text)
    else:
        await interaction.response.send_message(text, ephemeral=True)


def rerun_extra(original: Job, bot: discord.Client) -> dict[str, str]:
    """What a rerun remembers of the job it repeats (shown as a link on its status)."""
    extra = {"rerun_of": str(original.id)}
    message_id = original.result_message_id or original.status_message_id
    if message_id is not None:
        extra["rerun_of_url"] = (
            f"https://discord.com/channels/{original.origin.guild_id}/"
            f"{original.origin.channel_id}/{message_id}"
        )
    return extra
