"""Fixtures shared by the suite: real SQLite files in a temp folder, real aiohttp sessions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from bot.config import Period
from bot.quotas import Quotas
from bot.store import Store


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """A migrated database in a temporary file."""
    opened = await Store.open(tmp_path / "pikabot.sqlite3")
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def quotas(store: Store) -> Quotas:
    """Quotas with 100 credits a day per guild."""
    return Quotas(store, default_allowance=100, default_period=Period.DAILY)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """A real HTTP client session."""
    async with aiohttp.ClientSession() as opened:
        yield opened
