"""Where a Pika tool's inputs come from in Discord: the video of a message (a member's upload
or a video the bot posted), and images given as attachments or as typed web addresses.

Only translation: the checks themselves (bytes, sizes, where a typed URL leads) are the core's
(:mod:`bot.videos`, :mod:`bot.images`, :mod:`bot.probe`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import discord

from bot.images import RemoteImage
from bot.models import Job
from bot.videos import RemoteVideo

if TYPE_CHECKING:
    from bot.app import PikaBot

NO_VIDEO = (
    "That message has no video I can use: pick a message with an MP4, MOV or WebM video"
    " (uploaded, or one I posted)."
)

VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".webm", ".m4v"})
"""Attachments Discord labels with one of these names or a ``video/`` type are offered as a
source; their bytes decide (:func:`bot.videos.check_remote_video`)."""


def video_attachment(attachments: Sequence[discord.Attachment]) -> discord.Attachment | None:
    """The first attachment that looks like a video by its type or name."""
    for attachment in attachments:
        kind = (attachment.content_type or "").lower()
        if kind.startswith("video/") or PurePosixPath(attachment.filename.lower()).suffix in (
            VIDEO_SUFFIXES
        ):
            return attachment
    return None


def remote_video(attachment: discord.Attachment) -> RemoteVideo:
    """What the core needs to check an attached video (its CDN URL is signed: never logged)."""
    return RemoteVideo(attachment.filename, attachment.url, attachment.size)


def video_of_message(message: discord.Message, job: Job | None) -> RemoteVideo | None:
    """The video a message holds: an attached video (a member's or the bot's own upload), or,
    for a result the bot posted as a link (over the upload limit), that link.

    ``job`` is the bot's job whose result is ``message`` (None if it is not one). A link is
    posted only when it is unsigned and durable (:class:`cogs.presenter.DiscordJobObserver`),
    so the provider can fetch it too.
    """
    attachment = video_attachment(message.attachments)
    if attachment is not None:
        return remote_video(attachment)
    if job is None or job.result_message_id != message.id:
        return None
    url = job.extra.get("video_url")
    if url and url in message.content:
        return RemoteVideo(f"the video of job {job.id}", url)
    return None


async def message_video(bot: PikaBot, message: discord.Message) -> RemoteVideo | None:
    """The video of a context menu's target message. Only a result the bot posted as a link
    needs its job (one database read); an attached video is known from the message alone,
    so the modal opens well within Discord's 3 s."""
    found = video_of_message(message, None)
    if found is not None or bot.user is None or message.author.id != bot.user.id:
        return found
    return video_of_message(message, await bot.services.jobs.find_by_message(message.id))


def typed_image(text: str) -> RemoteImage:
    """An image a member gave as a web address (its size is learnt when it is read)."""
    url = text.strip()
    name = PurePosixPath(urlsplit(url).path).name or "the image"
    return RemoteImage(name[:80], url, None)
