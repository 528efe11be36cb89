"""Fixtures shared by the suite: each storage test on a real SQLite file in a temp folder and
on a real PostgreSQL server, real aiohttp sessions."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from bot.config import Period
from bot.quotas import Quotas
from bot.storage import Storage, open_storage, sqlite_url
from tests import postgres
from tests.units import Credits


@pytest.fixture
def quotas() -> Quotas:
    """Quotas with 100 credits a day per guild."""
    return Quotas(default_allowance=100, default_period=Period.DAILY)


@pytest.fixture
def credits(storage: Storage, quotas: Quotas) -> Credits:
    """Those quotas over the test's database, one locked unit of work per call."""
    return Credits(storage, quotas)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """A real HTTP client session."""
    async with aiohttp.ClientSession() as opened:
        yield opened


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """URL of a PostgreSQL server whose role may create databases, shared by the whole run.

    ``PIKABOT_TEST_POSTGRES_URL`` if set, else a throwaway server started on first use and
    stopped (its data deleted) at the end of the run. Tests should want ``postgres_url``.
    """
    with postgres.server_url() as url:
        yield url


@pytest.fixture
async def postgres_url(postgres_server_url: str) -> AsyncIterator[str]:
    """URL of a fresh empty database of this test's own, dropped when the test ends."""
    name = await postgres.create_database(postgres_server_url)
    try:
        yield postgres.database_url(postgres_server_url, name)
    finally:
        await postgres.drop_database(postgres_server_url, name)


BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(params=BACKENDS)
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a fresh, empty database on each backend in turn (the test runs twice)."""
    if request.param == "sqlite":
        return sqlite_url(tmp_path / "pikabot.sqlite3")
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
async def storage(storage_url: str) -> AsyncIterator[Storage]:
    """A migrated database on each backend in turn, closed after the test."""
    opened = await open_storage(storage_url)
    try:
        yield opened
    finally:
        await opened.close()
