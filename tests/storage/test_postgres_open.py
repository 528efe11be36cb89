"""PostgreSQL only: opening — migrations applied once by concurrent opens, a newer schema
refused, and connection failures as one clear line that never shows the password."""

from __future__ import annotations

import asyncio
import sys
from urllib.parse import unquote, urlsplit

import asyncpg
import pytest
import structlog

from bot import __version__
from bot.storage import StorageError, open_storage
from bot.storage.base import SchemaTooNew
from bot.storage.postgres import connect, open_postgres
from bot.storage.postgres.migrate import latest, migrations
from tests import postgres

PASSWORD = "s3cr3t-Pa55"


def _with_password(url: str, password: str = PASSWORD) -> str:
    """``url`` with a password (the test servers trust local logins, so any password works)."""
    parts = urlsplit(url)
    if parts.password is not None:
        return url
    user = parts.username or "postgres"
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{user}:{password}@{host}").geturl()


async def _fetch(url: str, sql: str) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(url)
    try:
        return list(await connection.fetch(sql))
    finally:
        await connection.close()


async def test_concurrent_opens_apply_each_migration_once(postgres_url: str) -> None:
    opened = await asyncio.wait_for(
        asyncio.gather(*(open_postgres(postgres_url) for _ in range(4))), 60
    )
    try:
        versions = [await storage.schema_version() for storage in opened]
    finally:
        for storage in opened:
            await storage.close()

    assert versions == [latest()] * 4
    rows = await _fetch(postgres_url, "SELECT version, name FROM schema_version ORDER BY version")
    assert [(r["version"], r["name"]) for r in rows] == [(m.version, m.name) for m in migrations()]


OPEN_AND_PRINT_VERSION = """
import asyncio, sys
from bot.storage import open_storage

async def main() -> None:
    storage = await open_storage(sys.argv[1])
    print(await storage.schema_version(), storage.created)
    await storage.close()

asyncio.run(main())
"""


async def test_two_processes_starting_together_migrate_once(postgres_url: str) -> None:
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            OPEN_AND_PRINT_VERSION,
            postgres_url,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(2)
    ]
    outputs = await asyncio.wait_for(asyncio.gather(*(p.communicate() for p in processes)), 60)

    assert [p.returncode for p in processes] == [0, 0], outputs
    said = sorted(out.decode().split()[-2:] for out, _ in outputs)
    assert said == [[str(latest()), "False"], [str(latest()), "True"]]  # one of them migrated
    rows = await _fetch(postgres_url, "SELECT version FROM schema_version ORDER BY version")
    assert [r["version"] for r in rows] == [m.version for m in migrations()]


async def test_reopening_changes_nothing(postgres_url: str) -> None:
    first = await open_storage(postgres_url)
    async with first.unit() as uow:
        await uow.meta.put("commands", "abc")
    await first.close()

    again = await open_storage(postgres_url)
    try:
        assert await again.schema_version() == latest()
        async with again.read() as uow:
            assert await uow.meta.get("commands") == "abc"
    finally:
        await again.close()


async def test_a_database_newer_than_the_code_is_refused_in_one_line(postgres_url: str) -> None:
    url = _with_password(postgres_url)
    storage = await open_postgres(url)
    await storage.close()
    newer = latest() + 7
    await _fetch(postgres_url, f"INSERT INTO schema_version (version, name) VALUES ({newer}, 'x')")

    with pytest.raises(SchemaTooNew) as refused:
        await open_storage(url)

    message = str(refused.value)
    parts = urlsplit(url)
    location = parts._replace(netloc=f"{parts.username}@{parts.netloc.rpartition('@')[2]}")
    assert message == (
        f"the database at {location.geturl()} is at schema version {newer}, migrated by"
        f" pikabot {__version__}, but this is pikabot {__version__}, which knows schema"
        f" versions up to {latest()}: upgrade to pikabot {__version__} or newer (or restore"
        " the backup taken before the upgrade)"
    )
    assert PASSWORD not in message


async def test_the_location_and_the_logs_never_show_the_password(postgres_url: str) -> None:
    url = _with_password(postgres_url) + "?pool_size=3"
    with structlog.testing.capture_logs() as logs:
        storage = await open_storage(url)
    try:
        assert storage.backend == "postgresql"
        assert PASSWORD not in storage.location
        assert storage.location.startswith(f"postgresql://{urlsplit(url).username}@")
        assert "pool_size" not in storage.location
        assert getattr(storage, "pool_size", None) == 3
    finally:
        await storage.close()
    assert logs, "opening logs where the data is"
    assert all(PASSWORD not in repr(event) for event in logs)


async def test_an_unreachable_server_is_one_line_without_the_password() -> None:
    port = postgres.free_port()  # nothing listens there: a real refused connection
    url = f"postgresql://pika:{PASSWORD}@127.0.0.1:{port}/pikabot"

    with pytest.raises(StorageError) as failed:
        await open_storage(url)

    message = str(failed.value)
    assert message == (
        f"cannot reach the PostgreSQL server of postgresql://pika@127.0.0.1:{port}/pikabot:"
        " connection refused (is PostgreSQL running there?)"
    )
    assert "\n" not in message and PASSWORD not in message
    assert failed.value.__cause__ is None and failed.value.__suppress_context__


async def test_a_missing_database_is_named_in_one_line(postgres_server_url: str) -> None:
    url = postgres.database_url(_with_password(postgres_server_url), "pikabot_test_missing")

    with pytest.raises(StorageError) as failed:
        await open_storage(url)

    message = str(failed.value)
    assert message.startswith("the database 'pikabot_test_missing' does not exist on the")
    assert "createdb pikabot_test_missing" in message
    assert "\n" not in message and PASSWORD not in message


async def test_an_unknown_role_is_one_line_without_the_password(postgres_url: str) -> None:
    parts = urlsplit(postgres_url)
    host = parts.netloc.rpartition("@")[2]
    url = parts._replace(netloc=f"nobody_here:{PASSWORD}@{host}").geturl()

    with pytest.raises(StorageError) as failed:
        await open_storage(url)

    message = str(failed.value)
    assert "refused user 'nobody_here': wrong password or no such role" in message
    assert "\n" not in message and PASSWORD not in message


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            f"postgresql://pika:{PASSWORD}@127.0.0.1:notaport/db",
            "the PostgreSQL URL is malformed (expected postgresql://user:password@host:5432/db)",
        ),
        (
            f"postgresql://pika:{PASSWORD}@127.0.0.1:5432/db?pool_size=lots",
            "pool_size must be a whole number (got 'lots')",
        ),
        (
            f"postgresql://pika:{PASSWORD}@127.0.0.1:5432/db?pool_size=0",
            "pool_size must be between 1 and 1000 (got 0)",
        ),
    ],
)
async def test_a_malformed_url_is_one_line_without_the_password(url: str, expected: str) -> None:
    with pytest.raises(StorageError) as failed:
        await open_storage(url)
    assert str(failed.value) == expected


async def test_a_connection_lost_mid_unit_is_one_line_and_the_pool_recovers(
    postgres_url: str,
) -> None:
    storage = await open_storage(_with_password(postgres_url))
    try:
        with pytest.raises(StorageError) as failed:
            async with storage.unit() as uow:
                await uow.meta.put("k", "v")
                await _fetch(  # the server ends every other session of this database
                    postgres_url,
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()",
                )
                await uow.meta.put("k", "w")
        message = str(failed.value)
        assert message.startswith(
            f"lost the connection to the PostgreSQL server of {storage.location}"
        )
        assert message.endswith("nothing of it was committed")
        assert "\n" not in message and PASSWORD not in message

        async with storage.unit() as uow:  # a fresh connection from the pool
            assert await uow.meta.get("k") is None
    finally:
        await storage.close()


async def test_an_error_of_the_units_own_work_is_not_called_a_lost_connection(
    postgres_url: str,
) -> None:
    storage = await open_storage(postgres_url)
    try:
        with pytest.raises(FileNotFoundError):
            async with storage.unit() as uow:
                await uow.meta.put("k", "v")
                raise FileNotFoundError("a file the unit's caller wanted")
        async with storage.read() as uow:
            assert await uow.meta.get("k") is None
    finally:
        await storage.close()


@pytest.mark.parametrize(
    ("url", "location"),
    [
        (
            f"postgresql://pika:{PASSWORD}@db.example:5432/bot?sslmode=require&pool_size=4",
            "postgresql://pika@db.example:5432/bot?sslmode=require",
        ),
        (
            f"postgresql://pika@db.example/bot?password={PASSWORD}&application_name=pikabot",
            "postgresql://pika@db.example/bot?application_name=pikabot",
        ),
        (
            "postgresql://pika:p%40ss%3Aword@h1:5432,h2:5433/bot",
            "postgresql://pika@h1:5432,h2:5433/bot",
        ),
    ],
)
def test_the_location_drops_every_password_and_our_own_options(url: str, location: str) -> None:
    target = connect.parse(url)
    assert target.location == location
    assert "pool_size" not in target.dsn  # asyncpg would send it to the server as a setting
    secrets = [s for s in (PASSWORD, "p%40ss%3Aword", "p@ss:word") if s in unquote(url) + url]
    assert secrets
    for secret in secrets:
        assert secret not in target.location
        assert secret not in repr(target)
        assert secret not in connect.first_line(f"bad login {secret} for {url}", target)


def test_the_database_defaults_to_the_user_as_asyncpg_does() -> None:
    assert connect.parse("postgresql://pika@127.0.0.1").database == "pika"
    assert connect.parse("postgresql://pika@127.0.0.1").pool_size == connect.DEFAULT_POOL_SIZE
    assert connect.parse("postgresql://pika@127.0.0.1?pool_size=3", pool_size=7).pool_size == 7
