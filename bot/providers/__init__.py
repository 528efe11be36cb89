"""Text-to-video gateways behind one :class:`~bot.providers.base.Provider` contract."""

from __future__ import annotations

import aiohttp

from bot.config import ProviderName, Settings
from bot.providers.base import Provider


def build_provider(
    settings: Settings, session: aiohttp.ClientSession, name: ProviderName | None = None
) -> Provider:
    """Provider ``name`` (``PIKA_PROVIDER`` by default), configured from ``settings``."""
    name = name or settings.provider
    key = settings.provider_key(name)
    if key is None:
        raise ValueError(f"{settings.provider_key_name(name)} is not set")
    api_key = key.get_secret_value()
    match name:
        case ProviderName.FAL:
            from bot.providers.fal import FalProvider

            return FalProvider(
                session,
                api_key=api_key,
                base_url=str(settings.fal_queue_url),
                poll_interval=settings.poll_interval,
            )
        case ProviderName.AIGATEWAY:
            from bot.providers.aigateway import AIGatewayProvider

            return AIGatewayProvider(
                session, api_key=api_key, base_url=str(settings.aigateway_base_url)
            )
        case ProviderName.ONEMIN:
            from bot.providers.onemin import OneMinProvider

            return OneMinProvider(session, api_key=api_key, base_url=str(settings.onemin_base_url))
        case ProviderName.PIXAZO:
            from bot.providers.pixazo import PixazoProvider

            return PixazoProvider(session, api_key=api_key, base_url=str(settings.pixazo_base_url))
