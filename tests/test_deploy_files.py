"""The deployment files, read as Docker and systemd would (no Docker engine runs here): both
compose files parse and say what the README says, the Dockerfile is pinned, layered and
checked by the bot's own /healthz, and every stop timeout outlasts the bot's own shutdown."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.app import SHUTDOWN_SECONDS
from bot.config import Settings

ROOT = Path(__file__).resolve().parent.parent
PLAIN = ROOT / "docker-compose.yml"
POSTGRES = ROOT / "deploy" / "docker-compose.postgres.yml"


def compose(path: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text())
    assert isinstance(loaded, dict)
    return loaded


def dockerfile() -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


def instruction(name: str) -> list[str]:
    return [line.split(None, 1)[1] for line in dockerfile() if line.split(None, 1)[0] == name]


def docker_healthcheck() -> list[str]:
    (line,) = instruction("HEALTHCHECK")
    return list(json.loads(line.split(" CMD ", 1)[1]))


def seconds(duration: str) -> float:
    """A compose duration (``45s``, ``1m30s``) in seconds."""
    parts = re.fullmatch(r"(?:(\d+)m)?(?:(\d+)s)?", duration)
    assert parts and duration, duration
    return int(parts.group(1) or 0) * 60 + int(parts.group(2) or 0)


def test_plain_compose_runs_the_bot_with_its_data_volume_and_health_check():
    """docker-compose.yml: one bot built here, its data on a named volume at /app/data, the
    image's own health check, and a stop timeout longer than the bot's shutdown."""
    plain = compose(PLAIN)
    (name,) = plain["services"]
    bot = plain["services"][name]
    assert bot["build"] == "."
    assert bot["restart"] == "unless-stopped"
    volume, target = bot["volumes"][0].split(":")
    assert target == "/app/data" and volume in plain["volumes"]
    assert bot["healthcheck"]["test"] == ["CMD", *docker_healthcheck()]
    assert seconds(bot["stop_grace_period"]) > SHUTDOWN_SECONDS
    assert bot["env_file"] == ".env"


def test_postgres_compose_runs_two_shards_on_one_database():
    """deploy/docker-compose.postgres.yml: PostgreSQL with a health check the bots wait for,
    two bots built from the repository root with a shard each, the same database URL."""
    setup = compose(POSTGRES)
    services = setup["services"]
    assert services["postgres"]["healthcheck"]["test"][0] == "CMD-SHELL"
    bots = {name: s for name, s in services.items() if name.startswith("bot")}
    assert sorted(s["environment"]["PIKABOT_SHARD_IDS"] for s in bots.values()) == ["0", "1"]
    for bot in bots.values():
        assert (POSTGRES.parent / bot["build"]["context"]).resolve() == ROOT
        assert bot["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert bot["environment"]["PIKABOT_DATABASE_URL"].startswith("postgresql://")
        assert bot["healthcheck"]["test"] == ["CMD", *docker_healthcheck()]
        assert seconds(bot["stop_grace_period"]) > SHUTDOWN_SECONDS


def test_dockerfile_is_pinned_to_the_tests_python_and_layers_its_dependencies():
    """The base is a full x.y.z slim-bookworm tag of the Python the tests run on; the
    dependencies are installed from pyproject.toml before any code is copied."""
    (base,) = instruction("FROM")
    match = re.fullmatch(r"python:(\d+)\.(\d+)\.(\d+)-slim-bookworm", base)
    assert match, base
    assert (int(match.group(1)), int(match.group(2))) == sys.version_info[:2]
    lines = dockerfile()
    first_install = next(i for i, line in enumerate(lines) if "pip install ." in line)
    copies = [i for i, line in enumerate(lines) if line.startswith("COPY")]
    assert lines[copies[0]] == "COPY pyproject.toml ./" and copies[0] < first_install
    assert all(i > first_install for i in copies[1:])
    assert any("COPY bot " in lines[i] for i in copies[1:])


def test_docker_health_check_asks_the_port_the_image_listens_on():
    """The image turns the listener on (127.0.0.1 by default), and its check reads that
    port from the environment, with the same default."""
    env = " ".join(instruction("ENV"))
    assert "PIKABOT_HTTP_PORT=8080" in env
    assert "PIKABOT_HTTP_HOST" not in env  # 127.0.0.1: nothing exposed unless asked for
    assert Settings.model_fields["http_host"].default == "127.0.0.1"
    command = docker_healthcheck()
    assert command[:2] == ["python", "-c"]
    assert "http://127.0.0.1:%s/healthz" in command[2]
    assert "'PIKABOT_HTTP_PORT', '8080'" in command[2]


@pytest.mark.parametrize("path", [PLAIN, POSTGRES], ids=["plain", "postgres"])
def test_compose_files_hold_no_secret(path: Path):
    """Secrets come from the environment or .env, never written in a compose file."""
    text = path.read_text()
    for line in text.splitlines():
        if re.search(r"(TOKEN|KEY|PASSWORD)\s*:", line):
            assert "${" in line, line


def test_systemd_example_outlasts_the_shutdown():
    """The README's unit stops the bot with SIGTERM and waits longer than it takes."""
    readme = (ROOT / "README.md").read_text()
    unit = readme.split("[Service]", 1)[1].split("```", 1)[0]
    assert "KillSignal=SIGTERM" in unit
    timeout = re.search(r"TimeoutStopSec=(\d+)", unit)
    assert timeout and int(timeout.group(1)) > SHUTDOWN_SECONDS
    assert "pikabot run" in unit
