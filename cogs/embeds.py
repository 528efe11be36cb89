"""Embeds the bot shows: a job's live status, its result, its failure, and a guild's credits."""

from __future__ import annotations

from datetime import datetime

import discord

from bot.models import Job, JobState, Progress
from bot.moderation import MemberStanding
from bot.quotas import Balance
from bot.tools import Tool

COLOUR_WORKING = discord.Colour.blurple()
COLOUR_DONE = discord.Colour.green()
COLOUR_FAILED = discord.Colour.red()

_STATE_LINES = {
    JobState.PENDING: "⏳ Waiting to start",
    JobState.SUBMITTING: "📨 Sending to the video service",
    JobState.QUEUED: "🕒 Queued",
    JobState.GENERATING: "🎬 Generating",
    JobState.DOWNLOADING: "⬇️ Downloading the video",
    JobState.FITTING: "🗜️ Making it fit Discord",
    JobState.POSTING: "📤 Posting the video",
    JobState.DELIVERED: "✅ Done",
    JobState.FAILED: "❌ Failed",
    JobState.CANCELLED: "🚫 Cancelled",
}


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _ts(when: datetime, style: str = "R") -> str:
    return f"<t:{int(when.timestamp())}:{style}>"


def options_line(job: Job) -> str:
    """The request's settings in one line."""
    r = job.request
    tool = r.tool
    if tool is not None:
        parts = [tool.kind.label]
        if tool.effect is not None:
            parts.append(tool.effect.value)
        if tool.kind is Tool.PIKAFRAMES:
            count = len(r.image_urls)
            parts += [f"{count} keyframes", f"{tool.seconds()}s", r.resolution.value]
        return " · ".join([*parts, f"seed {r.seed}"])
    return (
        f"{r.model.label} · {r.aspect.value} · {r.duration}s · {r.resolution.value} · seed {r.seed}"
    )


def _name(text: str) -> str:
    """A file name shown as code, safe in markdown and short."""
    return "`" + _clip(text.replace("`", "'"), 60) + "`"


def made_from(job: Job) -> str | None:
    """Which tool made the clip from which inputs, linking the source video's message."""
    r = job.request
    tool = r.tool
    if tool is None:
        return None
    names = [_name(n) for n in tool.image_names] or ["the image"] * len(r.image_urls)
    video = _name(tool.video_name or "the video")
    if tool.video_message_url:
        video = f"[{tool.video_name or 'this video'}]({tool.video_message_url})"
    match tool.kind:
        case Tool.PIKAFFECTS:
            effect = tool.effect.value if tool.effect else "?"
            return f"Pikaffects **{effect}** on {names[0]}"
        case Tool.PIKADDITIONS:
            return f"Pikadditions: {names[0]} added to {video}"
        case Tool.PIKASWAPS:
            region = _clip((tool.region or "").replace("*", ""), 200)
            what = names[0] if names else "the prompt"
            return f"Pikaswaps: *{region}* in {video} swapped for {what}"
        case Tool.PIKAFRAMES:
            lines = ["Pikaframes: " + " → ".join(names)]
            for index, transition in enumerate(tool.transitions, start=1):
                if transition.prompt:
                    step = f"{index}→{index + 1} ({transition.seconds} s)"
                    lines.append(f"{step}: {transition.prompt}")
            return _clip("\n".join(lines), 1024)


def headline(job: Job) -> str:
    """The clip's prompt, or for a tool used without one, what made it."""
    if job.request.prompt:
        return job.request.prompt
    tool = job.request.tool
    if tool is None:  # pragma: no cover - a request without a tool always has a prompt
        return ""
    return f"{tool.kind.label} {tool.effect.value}" if tool.effect else tool.kind.label


def _request_fields(embed: discord.Embed, job: Job) -> None:
    if job.request.prompt:
        embed.add_field(name="Prompt", value=_clip(job.request.prompt, 1024), inline=False)
    made = made_from(job)
    if made:
        embed.add_field(name="Made from", value=made, inline=False)
    if job.request.negative_prompt:
        embed.add_field(
            name="Negative prompt", value=_clip(job.request.negative_prompt, 1024), inline=False
        )
    embed.add_field(name="Settings", value=options_line(job), inline=False)
    embed.add_field(name="Cost", value=f"{job.cost} credits", inline=True)
    embed.add_field(name="Requested by", value=f"<@{job.origin.user_id}>", inline=True)
    if job.extra.get("rerun_of_url"):
        embed.add_field(
            name="Rerun of",
            value=f"[job {job.extra['rerun_of']}]({job.extra['rerun_of_url']})",
            inline=True,
        )


def status_line(job: Job, progress: Progress) -> str:
    """The live state as one line: position in the queue, or time generating."""
    line = _STATE_LINES[progress.state]
    if progress.state is JobState.QUEUED and progress.queue_position is not None:
        line += f" · position {progress.queue_position + 1}"
    if progress.state is JobState.PENDING and progress.queue_position is not None:
        line += f" · waiting in line, position {progress.queue_position + 1}"
    if progress.state is JobState.FITTING and progress.queue_position is not None:
        line += f" · waiting in line, position {progress.queue_position + 1}"
    if progress.state is JobState.GENERATING and job.started_at is not None:
        # A relative timestamp ticks on the member's screen without any edit from us.
        line += f" · started {_ts(job.started_at)}"
    if progress.detail:
        line += f"\n-# {_clip(progress.detail, 200)}"
    return line


def status_embed(job: Job, progress: Progress) -> discord.Embed:
    """The status message of a running job."""
    embed = discord.Embed(
        title="Making your Pika video",
        description=status_line(job, progress),
        colour=COLOUR_WORKING,
    )
    _request_fields(embed, job)
    embed.set_footer(text=f"job {job.id}")
    return embed


def done_embed(job: Job, jump_url: str | None) -> discord.Embed:
    """The status message once the video is posted."""
    where = f" · [see the video]({jump_url})" if jump_url else ""
    embed = discord.Embed(
        title="Your Pika video is ready", description=f"✅ Done{where}", colour=COLOUR_DONE
    )
    _request_fields(embed, job)
    embed.set_footer(text=f"job {job.id}")
    return embed


def result_embed(
    job: Job, *, took_seconds: float, note: str | None = None, full_quality: str | None = None
) -> discord.Embed:
    """The message that carries (or links) the video; ``note`` says what was done to it,
    ``full_quality`` links the original (a markdown link)."""
    embed = discord.Embed(
        description=note if note else _clip(headline(job), 4000),
        colour=COLOUR_DONE,
    )
    if note and job.request.prompt:
        embed.add_field(name="Prompt", value=_clip(job.request.prompt, 1024), inline=False)
    made = made_from(job)
    if made:
        embed.add_field(name="Made from", value=made, inline=False)
    embed.add_field(name="Settings", value=options_line(job), inline=False)
    embed.add_field(name="Cost", value=f"{job.cost} credits", inline=True)
    embed.add_field(name="Took", value=f"{took_seconds:.0f} s", inline=True)
    if full_quality:
        embed.add_field(name="Full quality", value=full_quality, inline=True)
    embed.set_footer(text=f"job {job.id}")
    return embed


def failed_embed(job: Job, reason: str) -> discord.Embed:
    """The status message of a job that failed (credits refunded)."""
    cancelled = job.state is JobState.CANCELLED
    embed = discord.Embed(
        title="Cancelled" if cancelled else "The video could not be made",
        description=f"{'🚫' if cancelled else '❌'} {reason}",
        colour=COLOUR_FAILED,
    )
    _request_fields(embed, job)
    embed.set_footer(text=f"job {job.id} · {job.cost} credits refunded")
    return embed


def credits_embed(
    balance: Balance, clip_cost: int | None, standing: MemberStanding | None = None
) -> discord.Embed:
    """The guild's credits, for ``/credits``, with the member's own use and cap."""
    embed = discord.Embed(title="Server credits", colour=COLOUR_WORKING)
    embed.add_field(
        name="Left", value=f"**{balance.remaining}** of {balance.allowance}", inline=True
    )
    embed.add_field(name="In use", value=str(balance.reserved), inline=True)
    embed.add_field(name="Spent", value=str(balance.spent), inline=True)
    if balance.granted:
        embed.add_field(name="Granted", value=str(balance.granted), inline=True)
    if clip_cost is not None:
        embed.add_field(name="A 5 s 720p clip", value=f"{clip_cost} credits", inline=True)
    if balance.carried:
        embed.add_field(name="Carried over", value=str(balance.carried), inline=True)
    embed.add_field(
        name="Resets",
        value=f"{_ts(balance.resets_at)} ({balance.period.value})",
        inline=True,
    )
    if standing is not None:
        if standing.exempt or standing.cap is None:
            yours = f"{standing.spent} credits used, no personal cap"
        else:
            yours = f"{standing.spent} of your {standing.cap} credits used"
        embed.add_field(name="You, this period", value=yours, inline=False)
    return embed
