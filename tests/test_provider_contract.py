"""One contract every provider keeps, run against each provider's loopback fake.

To add a provider: write a ``<name>_factory`` fixture returning a :class:`ProviderFactory`
and add its name to :data:`PROVIDER_FACTORIES` (one line).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from bot.models import GenerationRequest, Mode, PikaModel
from bot.providers.aigateway import AIGatewayProvider
from bot.providers.base import Provider, ProviderStatus, StatusKind
from bot.providers.errors import (
    AuthenticationError,
    GenerationFailed,
    RejectedInput,
    TransientError,
)
from bot.providers.fal import FalProvider
from bot.providers.http import RetryPolicy
from bot.providers.onemin import OneMinProvider
from bot.providers.pixazo import PixazoProvider
from tests.fakes.aigateway import FakeAIGateway
from tests.fakes.fal import FakeFal
from tests.fakes.onemin import FakeOneMin
from tests.fakes.pixazo import FakePixazo

FAST = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05, total_seconds=5)
POLL = 0.05
REQUEST = GenerationRequest(prompt="a red fox running through fresh snow", seed=7)


@dataclass(frozen=True)
class ProviderFactory:
    """How the contract suite gets a running fake and a provider pointed at it.

    ``fake()`` makes a fake (an async context manager exposing ``url``, ``key``, ``video``,
    ``count(kind)``); ``build(session, fake, api_key)`` the provider with test-sized intervals;
    ``fail(fake)`` makes the fake's next generations fail; ``lacking`` is a request the
    provider cannot make.
    """

    name: str
    fake: Callable[[], AbstractAsyncContextManager[Any]]
    build: Callable[[aiohttp.ClientSession, Any, str], Provider]
    fail: Callable[[Any], None]
    lacking: GenerationRequest


@pytest.fixture
def fal_factory() -> ProviderFactory:
    return ProviderFactory(
        name="fal",
        fake=lambda: FakeFal(),
        build=lambda session, fake, key: FalProvider(
            session, api_key=key, base_url=fake.url, poll_interval=POLL, retry=FAST
        ),
        # fal's failed generation still reaches COMPLETED; the result fetch carries the error.
        fail=lambda fake: fake.fail_result(500, "boom", error_type="generation_error"),
        lacking=REQUEST.model_copy(
            update={
                "model": PikaModel.V2_1,
                "mode": Mode.SCENES,
                "image_urls": ("https://example.com/a.png",),
            }
        ),
    )


@pytest.fixture
def aigateway_factory() -> ProviderFactory:
    return ProviderFactory(
        name="aigateway",
        fake=lambda: FakeAIGateway(min_poll_interval=POLL),
        build=lambda session, fake, key: AIGatewayProvider(
            session, api_key=key, base_url=fake.url, poll_interval=POLL, retry=FAST
        ),
        fail=lambda fake: fake.fail_jobs({"code": "upstream_error", "message": "boom"}),
        lacking=REQUEST.model_copy(update={"model": PikaModel.V2_TURBO}),
    )


@pytest.fixture
def onemin_factory() -> ProviderFactory:
    return ProviderFactory(
        name="onemin",
        fake=lambda: FakeOneMin(block_seconds=0.2),
        build=lambda session, fake, key: OneMinProvider(
            session,
            api_key=key,
            base_url=fake.url,
            retry=FAST,
            request_timeout=10,
            accept_window=0.05,
        ),
        fail=lambda fake: fake.fail_jobs(),
        lacking=REQUEST.model_copy(
            update={"mode": Mode.IMAGE, "image_urls": ("https://example.com/a.png",)}
        ),
    )


@pytest.fixture
def pixazo_factory() -> ProviderFactory:
    return ProviderFactory(
        name="pixazo",
        fake=lambda: FakePixazo(),
        build=lambda session, fake, key: PixazoProvider(
            session, api_key=key, base_url=fake.url, poll_interval=POLL, retry=FAST
        ),
        fail=lambda fake: fake.fail_jobs(),
        lacking=REQUEST.model_copy(update={"model": PikaModel.V2_1}),
    )


PROVIDER_FACTORIES = [
    "fal_factory",
    "aigateway_factory",
    "onemin_factory",
    "pixazo_factory",
]


@pytest.fixture(params=PROVIDER_FACTORIES)
def factory(request: pytest.FixtureRequest) -> ProviderFactory:
    made: ProviderFactory = request.getfixturevalue(request.param)
    return made


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def watch_all(provider: Provider, request: GenerationRequest) -> list[ProviderStatus]:
    seen: list[ProviderStatus] = []
    async with asyncio.timeout(15):
        handle = await provider.submit(request)
        async for status in provider.watch(handle):
            seen.append(status)
    return seen


async def test_contract_job_completes_with_downloadable_video(factory, session):
    """submit → watch ends with one COMPLETED whose URL serves exactly the fake's bytes."""
    async with factory.fake() as fake:
        provider = factory.build(session, fake, fake.key)
        seen = await watch_all(provider, REQUEST)
        assert seen[-1].kind is StatusKind.COMPLETED
        assert [s.kind for s in seen].count(StatusKind.COMPLETED) == 1
        assert all(a != b for a, b in itertools.pairwise(seen))
        result = seen[-1].result
        assert result is not None
        async with asyncio.timeout(5), session.get(result.video_url) as response:
            assert response.status == 200
            assert await response.read() == fake.video
        assert fake.count("submit") == 1


async def test_contract_failed_job_raises_generation_failed(factory, session):
    """A generation the provider reports as failed raises GenerationFailed."""
    async with factory.fake() as fake:
        factory.fail(fake)
        provider = factory.build(session, fake, fake.key)
        with pytest.raises(GenerationFailed) as caught:
            await watch_all(provider, REQUEST)
        assert caught.value.user_message


async def test_contract_wrong_key_raises_authentication_error(factory, session):
    """A refused key (401 from the fake's own check) raises AuthenticationError."""
    async with factory.fake() as fake:
        wrong = "definitely-not-the-key"
        provider = factory.build(session, fake, wrong)
        with pytest.raises(AuthenticationError) as caught:
            await watch_all(provider, REQUEST)
        assert wrong not in caught.value.user_message
        assert wrong not in str(caught.value)
        assert fake.count("submit") == 1


async def test_contract_unsupported_request_is_named_and_refused(factory, session):
    """capabilities.unsupported names what is lacking; submit refuses it without sending."""
    async with factory.fake() as fake:
        provider = factory.build(session, fake, fake.key)
        reason = provider.capabilities.unsupported(factory.lacking)
        assert reason
        assert provider.capabilities.unsupported(REQUEST) is None
        with pytest.raises(RejectedInput) as caught:
            await provider.submit(factory.lacking)
        assert caught.value.user_message == reason
        assert fake.count("submit") == 0


async def test_contract_prices_cover_what_capabilities_offer(factory, session):
    """Every model, resolution and duration the provider offers for text has a price."""
    async with factory.fake() as fake:
        provider = factory.build(session, fake, fake.key)
        caps = provider.capabilities
        for model in caps.models:
            for resolution in caps.resolutions:
                for duration in caps.durations:
                    request = REQUEST.model_copy(
                        update={"model": model, "resolution": resolution, "duration": duration}
                    )
                    assert provider.prices.usd_for(request) is not None
        assert provider.poll_interval >= 0


async def test_contract_verify_key_reads_the_key_without_creating_anything(factory, session):
    """verify_key: True for the fake's key, False for another; None where the provider has no
    cheap authenticated call, and then nothing at all is sent. Never a submit."""
    async with factory.fake() as fake:
        provider = factory.build(session, fake, fake.key)
        async with asyncio.timeout(10):
            verdict = await provider.verify_key()
        if verdict is None:
            assert fake.requests == []
            return
        assert verdict is True
        async with asyncio.timeout(10):
            refused = await factory.build(session, fake, "definitely-not-the-key").verify_key()
        assert refused is False
        assert fake.count("submit") == 0
        assert fake.requests, "the key check made a request"


async def test_contract_verify_key_outage_is_not_a_verdict(factory, session):
    """A 5xx answer, or no answer, to the key check raises TransientError; never a verdict."""
    async with factory.fake() as fake:
        provider = factory.build(session, fake, fake.key)
        if await provider.verify_key() is None:
            return  # nothing is sent, so there is nothing to fail
        if hasattr(fake, "script_error"):
            fake.script_error("status", 500, times=5)
            with pytest.raises(TransientError):
                async with asyncio.timeout(10):
                    await provider.verify_key()
    # The fake is closed now: its port refuses connections.
    with pytest.raises(TransientError):
        async with asyncio.timeout(10):
            await provider.verify_key()
