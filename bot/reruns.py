"""Reruns: the same request again with a new seed, or a bigger variant with the same seed.

Who may rerun: any member of the guild, by default, on any finished video — a rerun is a new
job on the rerunning member's own account (their guild's credits, their caps, their queue
place). Moderators can restrict reruns to each video's requester (``/quota reruns``);
moderators themselves always may. Deleting a result is for its requester and moderators.
"""

from __future__ import annotations

from enum import StrEnum

from bot.models import GenerationRequest, Resolution, random_seed
from bot.tools import Tool


class RerunsBy(StrEnum):
    """Who may rerun a finished video in a guild (moderators always may)."""

    ANYONE = "anyone"
    REQUESTER = "requester"


class Variant(StrEnum):
    """What a rerun changes."""

    NEW_SEED = "new"  # 🔁 and the Rerun button: same settings, a new random seed
    FULL_HD = "hd"  # same seed at 1080p
    LONGER = "long"  # same seed, 10 seconds


def rerun_request(request: GenerationRequest, variant: Variant) -> GenerationRequest:
    """The request a rerun of ``request`` makes."""
    match variant:
        case Variant.NEW_SEED:
            return request.model_copy(update={"seed": random_seed()})
        case Variant.FULL_HD:
            return request.model_copy(update={"resolution": Resolution.FULL_HD})
        case Variant.LONGER:
            if request.tool is not None:  # no tool has the setting: a button never offers it
                return request.model_copy(update={"seed": random_seed()})
            return request.model_copy(update={"duration": 10})


def offered_variants(request: GenerationRequest) -> list[Variant]:
    """The variants worth offering for a finished clip (no 1080p button on a 1080p clip).

    A Pika tool's clip is rerun on the same inputs with a new seed; only Pikaframes has a
    resolution to raise, and no tool has a 10-second setting (a Pikaframes video's length is
    its transitions')."""
    variants = [Variant.NEW_SEED]
    if request.tool is not None:
        if request.tool.kind is Tool.PIKAFRAMES and request.resolution is not Resolution.FULL_HD:
            variants.append(Variant.FULL_HD)
        return variants
    if request.resolution is not Resolution.FULL_HD:
        variants.append(Variant.FULL_HD)
    if request.duration != 10:
        variants.append(Variant.LONGER)
    return variants
