"""Buttons on status and result messages, persistent across restarts.

Each button is a ``DynamicItem`` whose ``custom_id`` carries the job id
(``pikabot:<action>:<job id>[:<variant>]``), registered at every start, so buttons on
messages posted before a restart keep working. The work happens in ``cogs.controls``.
"""

from __future__ import annotations

import re
from typing import Any

import discord

from bot.models import Job
from bot.reruns import Variant, offered_variants

RERUN_LABELS = {
    Variant.NEW_SEED: ("Rerun", "🔁"),
    Variant.FULL_HD: ("Same seed in 1080p", "🖥️"),
    Variant.LONGER: ("10-second version", "⏱️"),
}


class RerunButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"pikabot:rerun:(?P<job>\d+):(?P<variant>new|hd|long)",
):
    """Run a finished job again, as a new job for whoever clicks."""

    def __init__(self, job_id: int, variant: Variant) -> None:
        label, emoji = RERUN_LABELS[variant]
        super().__init__(
            discord.ui.Button(
                label=label,
                emoji=emoji,
                style=discord.ButtonStyle.primary
                if variant is Variant.NEW_SEED
                else discord.ButtonStyle.secondary,
                custom_id=f"pikabot:rerun:{job_id}:{variant.value}",
            )
        )
        self.job_id = job_id
        self.variant = variant

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str]
    ) -> RerunButton:
        """Rebuild the button from its custom id (also after a restart)."""
        return cls(int(match["job"]), Variant(match["variant"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        """Start the rerun."""
        from cogs.controls import rerun_from_button

        await rerun_from_button(interaction, self.job_id, self.variant)


class DeleteButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"pikabot:delete:(?P<job>\d+)"
):
    """Delete a result (its requester or a moderator)."""

    def __init__(self, job_id: int) -> None:
        super().__init__(
            discord.ui.Button(
                label="Delete",
                emoji="🗑️",
                style=discord.ButtonStyle.danger,
                custom_id=f"pikabot:delete:{job_id}",
            )
        )
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str]
    ) -> DeleteButton:
        """Rebuild the button from its custom id."""
        return cls(int(match["job"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        """Delete the result message if allowed."""
        from cogs.controls import delete_from_button

        await delete_from_button(interaction, self.job_id)


class CancelButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"pikabot:cancel:(?P<job>\d+)"
):
    """Cancel a job (its requester or a moderator); credits are refunded.

    Offered only while the job service says the job can be cancelled (``JobService.can_cancel``).
    """

    def __init__(self, job_id: int) -> None:
        super().__init__(
            discord.ui.Button(
                label="Cancel",
                emoji="✖️",
                style=discord.ButtonStyle.secondary,
                custom_id=f"pikabot:cancel:{job_id}",
            )
        )
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str]
    ) -> CancelButton:
        """Rebuild the button from its custom id."""
        return cls(int(match["job"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        """Cancel the job if allowed."""
        from cogs.controls import cancel_from_button

        await cancel_from_button(interaction, self.job_id)


DYNAMIC_ITEMS: tuple[type[discord.ui.DynamicItem[Any]], ...] = (
    RerunButton,
    DeleteButton,
    CancelButton,
)


def status_view(job: Job) -> discord.ui.View:
    """Controls under a running job's status message."""
    view = discord.ui.View(timeout=None)
    view.add_item(CancelButton(job.id))
    return view


def result_view(job: Job) -> discord.ui.View:
    """Controls under a delivered video."""
    view = discord.ui.View(timeout=None)
    for variant in offered_variants(job.request):
        view.add_item(RerunButton(job.id, variant))
    view.add_item(DeleteButton(job.id))
    return view
