"""The Discord side of a job: its status message, and the message that carries the video.

Everything here goes through the bot's own token on channel messages, never through the
interaction token, which dies after 15 minutes while a job may run longer.
"""

from __future__ import annotations

import contextlib

import discord
import structlog

from bot.clock import utcnow
from bot.delivery import (
    DEFAULT_UPLOAD_LIMIT,
    DownloadedVideo,
    FitKind,
    Fitting,
    attachment_limit,
    durable_link,
)
from bot.jobs import JobService
from bot.models import Job, Progress
from bot.providers.errors import ProviderError
from cogs.embeds import done_embed, failed_embed, result_embed, status_embed
from cogs.views import result_view, status_view

log = structlog.get_logger(__name__)

MESSAGE_TOO_OLD_TO_EDIT = 30046
"""Discord's code for "maximum number of edits to messages older than 1 hour reached"."""
RERUN_EMOJI = "🔁"


class CannotPost(ProviderError):
    """The upload was refused and the video's link cannot be shown (it is signed)."""

    user_message = (
        "The video is larger than this server's upload limit, and the video service's link is"
        " private, so it cannot be shown here."
    )


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def _full(url: str | None, fitting: Fitting | None) -> str | None:
    """The "full quality" link of a re-encoded clip: ``[original, 31.2 MB](url)``."""
    if url is None or fitting is None or fitting.kind is not FitKind.REENCODED:
        return None
    return f"[original, {_mb(fitting.original_size)}]({url})"


class DiscordJobObserver:
    """Shows one job in its channel. Rebuilt from the job row after a restart."""

    def __init__(self, bot: discord.Client, jobs: JobService, job: Job) -> None:
        self._bot = bot
        self._jobs = jobs
        self._channel = bot.get_partial_messageable(
            job.origin.channel_id, guild_id=job.origin.guild_id
        )

    async def _show(self, job: Job, embed: discord.Embed, *, final: bool = False) -> None:
        """Edit the status message; post a new one if it is gone or too old to edit.

        The Cancel button is shown only while the job service says the job can be cancelled
        (a job submitted to a provider that cannot cancel loses it); a final edit removes it.
        """
        view = None if final or not self._jobs.can_cancel(job) else status_view(job)
        if job.status_message_id is not None:
            message = self._channel.get_partial_message(job.status_message_id)
            try:
                await message.edit(embed=embed, view=view)
                return
            except discord.NotFound:
                log.info("status.message_gone", job_id=job.id)
            except discord.HTTPException as exc:
                if exc.code != MESSAGE_TOO_OLD_TO_EDIT:
                    raise
                log.info("status.message_too_old", job_id=job.id)
        sent = await self._channel.send(embed=embed, view=view or discord.utils.MISSING)
        await self._jobs.attach_status_message(job, sent.id)

    async def progress(self, job: Job, progress: Progress) -> None:
        """Edit the status message to the job's live state."""
        await self._show(job, status_embed(job, progress))

    def upload_limit(self, job: Job) -> int:
        """The per-attachment limit the video was fitted to: the interaction's
        ``attachment_size_limit`` (Discord's own figure for the guild, boosts included)."""
        return attachment_limit(job) or DEFAULT_UPLOAD_LIMIT

    async def delivered(self, job: Job, video: DownloadedVideo) -> int | None:
        """Post the video as an attachment if it fits, else as a link; return its message id.

        A fitted video (:attr:`DownloadedVideo.fitting`) says so in the result, with a "full
        quality" link to the original only where that URL is durable and unsigned. Nothing
        else is sent here: the job service stores the id first, then calls
        :meth:`show_delivered`.
        """
        took = (utcnow() - job.created_at).total_seconds()
        mention = f"<@{job.origin.user_id}>"
        allowed = discord.AllowedMentions(users=[discord.Object(job.origin.user_id)])
        limit = self.upload_limit(job)
        fitting = video.fitting
        note = fitting.note() if fitting is not None else None
        message: discord.Message | None = None
        if video.size <= limit:
            full = fitting.full_quality_url if fitting is not None else None
            try:
                message = await self._channel.send(
                    content=mention,
                    embed=result_embed(
                        job, took_seconds=took, note=note, full_quality=_full(full, fitting)
                    ),
                    file=discord.File(video.path, filename=video.filename),
                    allowed_mentions=allowed,
                    view=result_view(job),
                )
            except discord.HTTPException as exc:
                if exc.status != 413:
                    raise
                note = f"The video ({_mb(video.size)}) was refused as too large for an upload here."
        elif note is None:
            note = (
                f"The video is {_mb(video.size)}, over this server's upload limit of"
                f" {_mb(limit)}, so here is a link instead."
            )
        if message is None:
            url = video.source_url
            if not durable_link(url):
                raise CannotPost(f"{video.size} bytes, not attached; link is signed")
            message = await self._channel.send(
                content=f"{mention} {url}",
                embed=result_embed(job, took_seconds=took, note=note),
                allowed_mentions=allowed,
                view=result_view(job),
            )
        return message.id

    async def show_delivered(self, job: Job, message_id: int | None) -> None:
        """Add 🔁 to the result and turn the status into "done" (no Cancel); safe to repeat.

        The same after a fresh post and after a restart found the post.
        """
        if message_id is None:
            return
        message = self._channel.get_partial_message(message_id)
        with contextlib.suppress(discord.HTTPException):  # an invitation to rerun, not vital
            await message.add_reaction(RERUN_EMOJI)
        try:
            await self._show(job, done_embed(job, message.jump_url), final=True)
        except discord.HTTPException:
            log.warning("status.final_edit_failed", job_id=job.id, exc_info=True)

    async def already_delivered(self, job: Job) -> int | None:
        """Look for a result message posted before a restart (footer ``job N``)."""
        me = self._bot.user
        if me is None:
            return None
        marker = f"job {job.id}"
        async for message in self._channel.history(limit=50, after=job.created_at):
            if message.author.id != me.id or message.id == job.status_message_id:
                continue
            if any(e.footer.text == marker for e in message.embeds):
                return message.id
        return None

    async def failed(self, job: Job, reason: str) -> None:
        """Turn the status message into a clear failure (or cancellation) notice."""
        await self._show(job, failed_embed(job, reason), final=True)
