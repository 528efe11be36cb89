"""What a clip costs: the providers' public prices in USD, and their conversion to credits.

Credits are the bot's own unit: by default one credit is one US cent of the provider's price,
rounded up (``PIKABOT_CREDITS_PER_USD``), so a moderator's "500 credits a day" reads as "$5 a
day" and the provider's bill can never exceed what the ledger says was spent.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from bot.models import GenerationRequest, Mode, PikaModel, Resolution
from bot.tools import Tool, ToolPrice

PriceKey = tuple[PikaModel, Resolution, int]


@dataclass(frozen=True, slots=True)
class PriceTable:
    """USD per clip by model, resolution and duration; modes priced alike unless listed.

    ``tools``: each Pika tool the provider sells, with its price rule (:mod:`bot.tools`).
    """

    usd: Mapping[PriceKey, Decimal]
    scenes_usd: Mapping[PriceKey, Decimal] | None = None
    tools: Mapping[Tool, ToolPrice] = field(default_factory=dict)

    def usd_for(self, request: GenerationRequest) -> Decimal | None:
        """The provider's price for this request, or None when it has no such product."""
        if request.tool is not None:
            rule = self.tools.get(request.tool.kind)
            return None if rule is None else rule.price(request.tool, request.resolution.value)
        key = (request.model, request.resolution, request.duration)
        if request.mode is Mode.SCENES and self.scenes_usd is not None:
            return self.scenes_usd.get(key)
        return self.usd.get(key)


@dataclass(frozen=True, slots=True)
class Quote:
    """A priced request."""

    credits: int
    usd: Decimal


class Unpriced(LookupError):
    """The provider has no price for this combination, so the bot will not run it."""


def quote(table: PriceTable, request: GenerationRequest, credits_per_usd: int) -> Quote:
    """Price ``request``; credits are rounded up so the ledger never under-counts spend."""
    usd = table.usd_for(request)
    if usd is None and request.tool is not None:
        raise Unpriced(f"no price for {request.tool.kind.label} at {request.resolution}")
    if usd is None:
        raise Unpriced(
            f"no price for {request.model.label} {request.resolution} {request.duration}s"
        )
    return Quote(credits=max(1, math.ceil(usd * credits_per_usd)), usd=usd)


def scaled_table(base_720p_5s: Mapping[PikaModel, Decimal]) -> dict[PriceKey, Decimal]:
    """A full table from each model's 5-second 720p price.

    Pika's published 2.2 prices double for 10 seconds and are 2.25 times for 1080p
    ($0.20 / $0.40 / $0.45 / $0.90); where a gateway lists only the base price of an older
    model we assume the same ratios.
    """
    table: dict[PriceKey, Decimal] = {}
    for model, base in base_720p_5s.items():
        for resolution, factor in (
            (Resolution.HD, Decimal(1)),
            (Resolution.FULL_HD, Decimal("2.25")),
        ):
            for duration in (5, 10):
                table[(model, resolution, duration)] = base * factor * (duration // 5)
    return table
