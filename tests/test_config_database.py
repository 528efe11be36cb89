"""Where the data is: PIKABOT_DATABASE_URL, PIKABOT_DATABASE as the SQLite path, both resolved
to one absolute file; a bad URL is one line that never repeats a password."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import Settings, SettingsError, load_settings
from bot.redact import without_password


@pytest.fixture(autouse=True)
def clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No database variable from the outside; a working directory of the test's own."""
    for name in ("PIKABOT_DATABASE", "PIKABOT_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def settings(**env: str) -> Settings:
    return load_settings(need_discord=False, need_provider=False, **env)


def test_database_url_defaults_to_the_sqlite_file(tmp_path: Path):
    """Nothing set: the SQLite file data/pikabot.sqlite3 under the working directory."""
    loaded = settings()
    assert loaded.database == tmp_path / "data" / "pikabot.sqlite3"
    assert loaded.database_url == f"sqlite:///{tmp_path}/data/pikabot.sqlite3"


def test_database_path_keeps_working_and_is_made_absolute(tmp_path: Path):
    """PIKABOT_DATABASE (relative) is the SQLite file of the URL, absolute."""
    loaded = settings(PIKABOT_DATABASE="db/ledger.sqlite3")
    assert loaded.database_url == f"sqlite:///{tmp_path}/db/ledger.sqlite3"


@pytest.mark.parametrize(
    ("url", "relative"),
    [("sqlite:///rel/x.sqlite3", "rel/x.sqlite3"), ("sqlite:////abs/y.sqlite3", None)],
)
def test_sqlite_url_three_slashes_relative_four_absolute(
    tmp_path: Path, url: str, relative: str | None
):
    """A relative SQLite URL is resolved like PIKABOT_DATABASE; both name the same file."""
    loaded = settings(PIKABOT_DATABASE_URL=url)
    expected = tmp_path / relative if relative else Path("/abs/y.sqlite3")
    assert loaded.database == expected
    assert loaded.database_url == f"sqlite:///{expected}"
    assert loaded.data_dir == expected.parent


def test_postgres_url_is_kept_and_its_password_is_a_secret():
    """A PostgreSQL URL is used as given; its password is redacted from logs and checks."""
    url = "postgresql://bot:s3cret-pw@127.0.0.1:5432/pikabot"
    loaded = settings(PIKABOT_DATABASE_URL=url)
    assert loaded.database_url == url
    assert "s3cret-pw" in loaded.secrets()
    assert without_password(url) == "postgresql://bot:***@127.0.0.1:5432/pikabot"


@pytest.mark.parametrize("url", ["mysql://bot:s3cret-pw@h/db", "sqlite://", "nothing"])
def test_bad_database_url_is_one_line_without_the_password(url: str):
    """An unknown scheme or a SQLite URL without a file: one line naming the setting."""
    with pytest.raises(SettingsError) as refused:
        settings(PIKABOT_DATABASE_URL=url)
    line = str(refused.value)
    assert line.startswith("PIKABOT_DATABASE_URL is invalid:") and "\n" not in line
    assert "s3cret-pw" not in line
