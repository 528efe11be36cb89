"""The PostgreSQL test facility: a fresh empty database per test, and the throwaway server.

These run against whatever ``postgres_server_url`` gives (``PIKABOT_TEST_POSTGRES_URL`` or a
throwaway server); the throwaway-server tests start one of their own in any case, so a run with
the variable set still proves that a machine without PostgreSQL passes.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import tempfile
from pathlib import Path

import asyncpg
import psutil
import pytest

from tests import postgres


async def _tables(url: str) -> list[str]:
    """The names of the tables in ``url``'s public schema."""
    connection = await asyncpg.connect(url, timeout=postgres.CONNECT_TIMEOUT)
    try:
        rows = await connection.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        )
    finally:
        await connection.close()
    return sorted(row["table_name"] for row in rows)


async def _databases(server_url: str) -> set[str]:
    """The names of the databases on the server."""
    connection = await asyncpg.connect(server_url, timeout=postgres.CONNECT_TIMEOUT)
    try:
        rows = await connection.fetch("SELECT datname FROM pg_database")
    finally:
        await connection.close()
    return {row["datname"] for row in rows}


async def test_postgres_url_is_an_empty_database_of_its_own(postgres_url: str):
    """The database is new, empty, named with the prefix, and takes a table and rows."""
    connection = await asyncpg.connect(postgres_url, timeout=postgres.CONNECT_TIMEOUT)
    try:
        name = await connection.fetchval("SELECT current_database()")
        assert name.startswith(postgres.DATABASE_PREFIX)
        assert await _tables(postgres_url) == []
        await connection.execute("CREATE TABLE credits (guild_id BIGINT PRIMARY KEY, left_ INT)")
        await connection.executemany("INSERT INTO credits VALUES ($1, $2)", [(1, 100), (2, 40)])
        total = await connection.fetchval("SELECT sum(left_) FROM credits")
    finally:
        await connection.close()
    assert total == 140
    assert await _tables(postgres_url) == ["credits"]


@pytest.mark.parametrize("guild_id", [1, 2])
async def test_each_test_starts_without_the_other_tests_tables(postgres_url: str, guild_id: int):
    """Run twice: the same CREATE TABLE succeeds both times and each sees only its own row."""
    connection = await asyncpg.connect(postgres_url, timeout=postgres.CONNECT_TIMEOUT)
    try:
        await connection.execute("CREATE TABLE guilds (id BIGINT PRIMARY KEY)")
        await connection.execute("INSERT INTO guilds VALUES ($1)", guild_id)
        ids = [row["id"] for row in await connection.fetch("SELECT id FROM guilds")]
    finally:
        await connection.close()
    assert ids == [guild_id]


async def test_databases_are_separate_and_dropped(postgres_server_url: str):
    """Two databases from the same server do not share tables; a dropped one is gone."""
    first = await postgres.create_database(postgres_server_url)
    second = await postgres.create_database(postgres_server_url)
    try:
        assert first != second
        first_url = postgres.database_url(postgres_server_url, first)
        connection = await asyncpg.connect(first_url, timeout=postgres.CONNECT_TIMEOUT)
        try:
            await connection.execute("CREATE TABLE only_in_first (id INT)")
        finally:
            await connection.close()
        assert await _tables(first_url) == ["only_in_first"]
        assert await _tables(postgres.database_url(postgres_server_url, second)) == []
    finally:
        await postgres.drop_database(postgres_server_url, first)
        await postgres.drop_database(postgres_server_url, second)
    assert {first, second}.isdisjoint(await _databases(postgres_server_url))


async def test_drop_closes_connections_left_open(postgres_server_url: str):
    """A test that forgot to close its connection does not keep its database alive."""
    name = await postgres.create_database(postgres_server_url)
    forgotten = await asyncpg.connect(
        postgres.database_url(postgres_server_url, name), timeout=postgres.CONNECT_TIMEOUT
    )
    try:
        await postgres.drop_database(postgres_server_url, name)
    finally:
        forgotten.terminate()
    assert name not in await _databases(postgres_server_url)


@pytest.mark.parametrize("name", ["test", "postgres", "pikabot_test_x; DROP DATABASE test", ""])
async def test_drop_refuses_databases_it_did_not_create(name: str):
    """On a shared server only ``pikabot_test_<random>`` names can be dropped."""
    with pytest.raises(ValueError, match="refusing to drop"):
        await postgres.drop_database("postgresql://nobody@127.0.0.1:1/none", name)


async def test_unreachable_server_gives_a_clear_error_without_the_password():
    """A wrong PIKABOT_TEST_POSTGRES_URL fails with its variable named and no secret shown."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    url = f"postgresql://tester:s3cret-pw@127.0.0.1:{port}/test"
    with pytest.raises(postgres.PostgresUnavailable) as raised:
        await postgres.create_database(url)
    message = str(raised.value)
    assert postgres.URL_VARIABLE in message and f"127.0.0.1:{port}" in message
    assert "s3cret-pw" not in message


async def test_throwaway_server_starts_serves_and_leaves_nothing_behind():
    """The fresh-machine path, whatever the environment: start, connect, stop, all gone."""
    server = await asyncio.to_thread(postgres.start_throwaway_server)
    try:
        assert (server.data_dir / "PG_VERSION").is_file()
        connection = await asyncpg.connect(server.url, timeout=postgres.CONNECT_TIMEOUT)
        try:
            settings = {
                name: await connection.fetchval(f"SHOW {name}")
                for name in ("listen_addresses", "fsync", "server_encoding")
            }
            await connection.execute("CREATE TABLE t (id INT)")
        finally:
            await connection.close()
        owner = psutil.Process(server.process.pid).uids().effective
    finally:
        await asyncio.to_thread(server.stop)
    assert settings == {"listen_addresses": "127.0.0.1", "fsync": "off", "server_encoding": "UTF8"}
    runs_as = postgres.unprivileged_user()
    assert owner == (runs_as.uid if runs_as is not None else os.geteuid()) != 0
    assert server.process.returncode is not None
    assert not server.root.exists()


def test_throwaway_server_that_cannot_start_says_why_and_cleans_up():
    """A taken port: the error carries the server's own words, and no temp dir is left."""
    parent = Path(tempfile.mkdtemp(prefix="pikabot-pg-test-"))
    parent.chmod(0o755)  # as root, the server's user must be able to enter it
    try:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            with pytest.raises(postgres.PostgresUnavailable, match="postgres exited") as raised:
                postgres.start_throwaway_server(port=port, temp_parent=parent)
        assert "could not" in str(raised.value)  # "could not bind/create listen socket"
        assert list(parent.iterdir()) == []
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def test_missing_binaries_give_a_clear_error(tmp_path: Path):
    """A folder without initdb: the error says what failed instead of a bare traceback."""
    with pytest.raises(postgres.PostgresUnavailable, match="initdb"):
        postgres.start_throwaway_server(tmp_path)
