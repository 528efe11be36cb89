"""Logs: JSON lines with dotted events, standard-library records routed through, no secrets."""

from __future__ import annotations

import ast
import json
import logging
import re
from pathlib import Path

import pytest
import structlog

from bot.config import LogFormat
from bot.logs import configure_logging
from bot.redact import redact_text, safe_url

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _reset_logging():
    yield
    structlog.reset_defaults()
    logging.getLogger().handlers.clear()


def test_logging_json_redacts_secrets(capsys: pytest.CaptureFixture[str]):
    """A secret in any field, and a signed URL's signature, never reach the output."""
    configure_logging(level="INFO", fmt=LogFormat.JSON, secrets=["sk-very-secret-key"])
    structlog.get_logger("t").info(
        "provider.called",
        header="Key sk-very-secret-key",
        url="https://cdn.example/v.mp4?X-Amz-Signature=abcdef&X-Amz-Credential=zz",
    )
    line = capsys.readouterr().err.strip().splitlines()[-1]
    record = json.loads(line)
    assert record["event"] == "provider.called"
    assert "sk-very-secret-key" not in line
    assert "abcdef" not in line
    assert record["url"].startswith("https://cdn.example/v.mp4?")


def test_logging_stdlib_records_are_routed(capsys: pytest.CaptureFixture[str]):
    """discord.py's standard-library logs come out as the same JSON, redacted."""
    configure_logging(level="INFO", fmt=LogFormat.JSON, secrets=["Bot-Token-123456"])
    logging.getLogger("discord.client").info("logging in using static token %s", "Bot-Token-123456")
    record = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert record["logger"] == "discord.client"
    assert "Bot-Token-123456" not in record["event"]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://a.b/c.mp4", "https://a.b/c.mp4"),
        (
            "https://cdn.discordapp.com/x.png?ex=1&is=2&hm=3",
            "https://cdn.discordapp.com/x.png?<redacted>",
        ),
    ],
)
def test_safe_url_drops_queries(url: str, expected: str):
    """Signed URLs lose their query; plain ones stay as they are."""
    assert safe_url(url) == expected


def test_redact_text_masks_known_secrets():
    """Known secrets are masked wherever they occur in text."""
    assert redact_text("token=abcd1234 end", ["abcd1234"]) == "token=*** end"


def test_logging_console_redacts_secrets_in_tracebacks(capsys: pytest.CaptureFixture[str]):
    """A secret inside an exception's message is masked in console output too."""
    configure_logging(level="INFO", fmt=LogFormat.CONSOLE, secrets=["sk-console-secret"])
    try:
        raise RuntimeError("request failed with key sk-console-secret")
    except RuntimeError:
        structlog.get_logger("t").exception("provider.crashed")
    err = capsys.readouterr().err
    assert "provider.crashed" in err
    assert "RuntimeError" in err
    assert "sk-console-secret" not in err


_LEVELS = {"debug", "info", "warning", "error", "exception", "critical"}
_EVENT = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")


def _log_calls(tree: ast.AST) -> list[ast.Call]:
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in _LEVELS
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id in {"log", "bound", "logger"}
    ]


def _dotted_family(event: ast.expr | None) -> bool:
    if not isinstance(event, ast.JoinedStr) or len(event.values) != 2:
        return False
    prefix, name = event.values
    return (
        isinstance(prefix, ast.Constant)
        and re.fullmatch(r"[a-z][a-z0-9_]*\.", str(prefix.value)) is not None
        and isinstance(name, ast.FormattedValue)
        and isinstance(name.value, ast.Name)
    )


def test_logging_is_one_way_structlog_dotted_events():
    """Every module logs through structlog with a dotted event name and key/value pairs:
    no standard-library logger of our own, no %-format or f-string prose."""
    problems = []
    for path in sorted([*(ROOT / "bot").rglob("*.py"), *(ROOT / "cogs").rglob("*.py")]):
        name = path.relative_to(ROOT).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                name != "bot/logs.py"
                and isinstance(node, ast.Attribute)
                and node.attr == "getLogger"
            ):
                problems.append(f"{name}:{node.lineno}: logging.getLogger")
        for call in _log_calls(tree):
            event = call.args[0] if call.args else None
            if _dotted_family(event):
                pass  # f"credits.{state}": one family of dotted events
            elif not (isinstance(event, ast.Constant) and isinstance(event.value, str)):
                problems.append(f"{name}:{call.lineno}: event is not a literal")
            elif not _EVENT.match(event.value):
                problems.append(f"{name}:{call.lineno}: {event.value!r} is not a dotted event")
            if len(call.args) > 1:
                problems.append(f"{name}:{call.lineno}: positional %-format arguments")
    assert problems == []
