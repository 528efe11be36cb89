"""Settings, read once from the environment and an optional ``.env`` file.

The provider settings keep the names the providers' own documents use (``FAL_KEY``,
``FAL_QUEUE_URL``, ...); everything of the bot's own is under the ``PIKABOT_`` prefix.
"""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from dotenv import dotenv_values
from pydantic import (
    AliasChoices,
    Field,
    HttpUrl,
    SecretStr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.models import PikaModel


class ProviderName(StrEnum):
    """The gateways the bot can use (``PIKA_PROVIDER``)."""

    FAL = "fal"
    AIGATEWAY = "aigateway"
    ONEMIN = "onemin"
    PIXAZO = "pixazo"


class Period(StrEnum):
    """How often a guild's allowance starts again."""

    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"


class LogFormat(StrEnum):
    """``auto`` is a coloured console in a terminal and JSON lines otherwise."""

    AUTO = "auto"
    CONSOLE = "console"
    JSON = "json"


def _env(name: str) -> AliasChoices:
    return AliasChoices(name)


Seconds = Annotated[float, Field(gt=0)]

_DURATION_HINT = "use seconds (1200) or an ISO 8601 duration (PT20M)"
_SHARDS_HINT = "use a range such as 0-3 or a list such as 4,5,6,7"


def parse_shard_ids(text: str) -> tuple[int, ...] | None:
    """Shard ids from ``0-3``, ``4,5,6,7`` or a mix (``0-1,4``); empty: None (every shard)."""
    if not text.strip():
        return None
    ids: set[int] = set()
    for part in text.split(","):
        first, dash, last = part.strip().partition("-")
        try:
            low = int(first)
            high = int(last) if dash else low
        except ValueError:
            raise ValueError(f"{text!r} is not a list of shard ids: {_SHARDS_HINT}") from None
        if low < 0 or high < low:
            raise ValueError(f"{part.strip()!r} is not a range of shard ids: {_SHARDS_HINT}")
        ids.update(range(low, high + 1))
    return tuple(sorted(ids))


_TIMEDELTA = TypeAdapter(timedelta)


def parse_duration(value: object) -> timedelta:
    """A positive duration from seconds (``1200``, ``90.5``) or ISO 8601 (``PT20M``)."""
    if isinstance(value, timedelta):
        duration = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        duration = _seconds(float(value))
    elif isinstance(value, str):
        text = value.strip()
        try:
            duration = _seconds(float(text))
        except ValueError:
            try:
                duration = _TIMEDELTA.validate_python(text)
            except ValidationError:
                raise ValueError(_DURATION_HINT) from None
    else:
        raise ValueError(_DURATION_HINT)
    if duration <= timedelta(0):
        raise ValueError(f"must be longer than zero: {_DURATION_HINT}")
    return duration


def _seconds(number: float) -> timedelta:
    if not math.isfinite(number):
        raise ValueError(_DURATION_HINT)
    return timedelta(seconds=number)


class Settings(BaseSettings):
    """Every setting of the bot. Secrets are ``SecretStr`` so they never print."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=False,
        case_sensitive=False,
    )

    # Discord
    discord_token: SecretStr | None = Field(default=None, validation_alias=_env("DISCORD_TOKEN"))
    dev_guild_id: int | None = Field(default=None, validation_alias=_env("PIKABOT_DEV_GUILD_ID"))
    shard_count: int | None = Field(
        default=None, ge=1, validation_alias=_env("PIKABOT_SHARD_COUNT")
    )  # None: Discord's recommendation (GET /gateway/bot)
    shard_ids: Annotated[tuple[int, ...] | None, NoDecode] = Field(
        default=None, validation_alias=_env("PIKABOT_SHARD_IDS")
    )  # None: every shard; with several processes, each its own range

    # Providers: names fixed by the providers' own documents.
    provider: ProviderName = Field(default=ProviderName.FAL, validation_alias=_env("PIKA_PROVIDER"))
    fallback_provider: ProviderName | None = Field(
        default=None, validation_alias=_env("PIKABOT_FALLBACK_PROVIDER")
    )
    fal_key: SecretStr | None = Field(default=None, validation_alias=_env("FAL_KEY"))
    fal_queue_url: HttpUrl = Field(
        default=HttpUrl("https://queue.fal.run"), validation_alias=_env("FAL_QUEUE_URL")
    )
    aigateway_api_key: SecretStr | None = Field(
        default=None, validation_alias=_env("AIGATEWAY_API_KEY")
    )
    aigateway_base_url: HttpUrl = Field(
        default=HttpUrl("https://api.aigateway.sh"), validation_alias=_env("AIGATEWAY_BASE_URL")
    )
    onemin_api_key: SecretStr | None = Field(default=None, validation_alias=_env("ONEMIN_API_KEY"))
    onemin_base_url: HttpUrl = Field(
        default=HttpUrl("https://api.1min.ai"), validation_alias=_env("ONEMIN_BASE_URL")
    )
    pixazo_api_key: SecretStr | None = Field(default=None, validation_alias=_env("PIXAZO_API_KEY"))
    pixazo_base_url: HttpUrl = Field(
        default=HttpUrl("https://gateway.pixazo.ai"), validation_alias=_env("PIXAZO_BASE_URL")
    )

    # The bot's own
    database: Path = Field(
        default=Path("data/pikabot.sqlite3"), validation_alias=_env("PIKABOT_DATABASE")
    )
    """The SQLite file; with a ``sqlite:`` ``PIKABOT_DATABASE_URL``, the file that URL names."""
    database_url: str = Field(default="", validation_alias=_env("PIKABOT_DATABASE_URL"))
    """Where the data is: ``sqlite:///path`` (default: ``PIKABOT_DATABASE`` as a URL) or
    ``postgresql://user:pass@host/db``; a SQLite path is made absolute."""
    default_model: PikaModel = Field(
        default=PikaModel.V2_2, validation_alias=_env("PIKABOT_DEFAULT_MODEL")
    )
    poll_interval: Seconds = Field(default=2.0, validation_alias=_env("PIKABOT_POLL_INTERVAL"))
    job_deadline: timedelta = Field(
        default=timedelta(minutes=20), validation_alias=_env("PIKABOT_JOB_DEADLINE")
    )
    status_edit_interval: Seconds = Field(
        default=3.0, validation_alias=_env("PIKABOT_STATUS_EDIT_INTERVAL")
    )
    default_allowance: int = Field(
        default=200, ge=0, validation_alias=_env("PIKABOT_DEFAULT_ALLOWANCE")
    )
    allowance_period: Period = Field(
        default=Period.DAILY, validation_alias=_env("PIKABOT_ALLOWANCE_PERIOD")
    )
    credits_per_usd: int = Field(
        default=100, ge=1, validation_alias=_env("PIKABOT_CREDITS_PER_USD")
    )
    max_download_mb: int = Field(
        default=500, ge=1, le=4096, validation_alias=_env("PIKABOT_MAX_DOWNLOAD_MB")
    )
    fit_concurrency: int = Field(default=1, ge=1, validation_alias=_env("PIKABOT_FIT_CONCURRENCY"))
    """Videos re-encoded at once to fit Discord (more wait in line); bench/fit.py measured 1
    on 2 cores as the most that keeps the bot's answers quick."""
    fit_timeout: Seconds = Field(default=300.0, validation_alias=_env("PIKABOT_FIT_TIMEOUT"))
    """Seconds one fit may take before it is stopped (then a link, or a refund)."""
    max_concurrent_jobs: int = Field(
        default=50, ge=1, validation_alias=_env("PIKABOT_MAX_CONCURRENT_JOBS")
    )
    guild_concurrency: int | None = Field(
        default=None, ge=1, validation_alias=_env("PIKABOT_GUILD_CONCURRENCY")
    )
    max_queue: int = Field(default=100, ge=0, validation_alias=_env("PIKABOT_MAX_QUEUE"))
    guild_max_queue: int | None = Field(
        default=20, ge=0, validation_alias=_env("PIKABOT_GUILD_MAX_QUEUE")
    )
    timezone: str = Field(default="UTC", validation_alias=_env("PIKABOT_TIMEZONE"))
    monthly_usd_cap: Decimal | None = Field(
        default=None, gt=0, validation_alias=_env("PIKABOT_MONTHLY_USD_CAP")
    )
    guild_monthly_usd_cap: Decimal | None = Field(
        default=None, gt=0, validation_alias=_env("PIKABOT_GUILD_MONTHLY_USD_CAP")
    )
    log_format: LogFormat = Field(
        default=LogFormat.AUTO, validation_alias=_env("PIKABOT_LOG_FORMAT")
    )
    log_level: str = Field(default="INFO", validation_alias=_env("PIKABOT_LOG_LEVEL"))
    http_port: int | None = Field(
        default=None, ge=0, le=65535, validation_alias=_env("PIKABOT_HTTP_PORT")
    )  # None: no listener; 0: any free port (logged as http.listening)
    http_host: str = Field(default="127.0.0.1", validation_alias=_env("PIKABOT_HTTP_HOST"))

    @field_validator("job_deadline", mode="before")
    @classmethod
    def _duration(cls, value: object) -> timedelta:
        return parse_duration(value)

    @field_validator("shard_ids", mode="before")
    @classmethod
    def _shard_ranges(cls, value: object) -> object:
        return parse_shard_ids(value) if isinstance(value, str) else value

    @field_validator("database")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        # Relative to the working directory, as always, but kept absolute so that every log
        # line and `pikabot check` say which file is meant.
        return value if str(value) == ":memory:" else Path(os.path.abspath(value.expanduser()))

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        from bot.storage import POSTGRES_SCHEMES, SQLITE_SCHEME, StorageError, sqlite_path

        url = value.strip()
        if not url:
            return url
        scheme = url.split(":", 1)[0].lower() if ":" in url else ""
        if scheme == SQLITE_SCHEME:
            try:
                sqlite_path(url)
            except StorageError as exc:
                raise ValueError(str(exc)) from None
        elif scheme not in POSTGRES_SCHEMES:
            raise ValueError(
                "use sqlite:///path/to/file.sqlite3 or postgresql://user:password@host/db"
                f" (got {scheme + '://' if scheme else 'no scheme'})"
            )
        return url

    @model_validator(mode="after")
    def _one_database(self) -> Settings:
        # No URL: PIKABOT_DATABASE as one. A SQLite URL names the file PIKABOT_DATABASE would,
        # made absolute the same way, so logs and `pikabot check` say which file is meant.
        from bot.storage import SQLITE_SCHEME, sqlite_path, sqlite_url

        if not self.database_url:
            self.database_url = sqlite_url(self.database)
        elif self.database_url.lower().startswith(SQLITE_SCHEME + ":"):
            path = sqlite_path(self.database_url).expanduser()
            self.database = Path(os.path.abspath(path))
            self.database_url = sqlite_url(self.database)
        return self

    @property
    def data_dir(self) -> Path:
        """The folder of the SQLite file (``PIKABOT_DATABASE``'s, also with PostgreSQL): where
        the terminal jobs' lease files are kept."""
        return self.database.parent

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        if value.upper() == "UTC":
            return "UTC"
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("use an IANA time zone name such as Europe/Berlin or UTC") from None
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("use DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return level

    def provider_key(self, name: ProviderName | None = None) -> SecretStr | None:
        """The API key of provider ``name`` (the configured one by default)."""
        return {
            ProviderName.FAL: self.fal_key,
            ProviderName.AIGATEWAY: self.aigateway_api_key,
            ProviderName.ONEMIN: self.onemin_api_key,
            ProviderName.PIXAZO: self.pixazo_api_key,
        }[name or self.provider]

    def provider_key_name(self, name: ProviderName | None = None) -> str:
        """The environment variable that holds provider ``name``'s key."""
        return {
            ProviderName.FAL: "FAL_KEY",
            ProviderName.AIGATEWAY: "AIGATEWAY_API_KEY",
            ProviderName.ONEMIN: "ONEMIN_API_KEY",
            ProviderName.PIXAZO: "PIXAZO_API_KEY",
        }[name or self.provider]

    def secrets(self) -> list[str]:
        """Every secret value that is set, for the log redactor."""
        values = [self.discord_token, self.fal_key, self.aigateway_api_key]
        values += [self.onemin_api_key, self.pixazo_api_key]
        found = [v.get_secret_value() for v in values if v is not None and v.get_secret_value()]
        password = urlsplit(self.database_url).password
        return [*found, password] if password else found


class SettingsError(Exception):
    """A missing or invalid setting, described in one line that names it."""


_ENV_NAMES: dict[str, str] = {
    name: (
        str(field.validation_alias.choices[0])
        if isinstance(field.validation_alias, AliasChoices)
        else name.upper()
    )
    for name, field in Settings.model_fields.items()
}


_SECRET_FIELDS = frozenset(
    name for name, field in Settings.model_fields.items() if field.annotation == SecretStr | None
) | {"database_url"}  # a PostgreSQL URL may carry a password


def _describe_invalid(error: Any) -> str:
    """One line for pydantic's first error: the variable, what is wrong, and what was given.

    A validator's own ``ValueError`` text is shown as written (pydantic would prefix it with
    "Value error,"); a secret's value is never repeated.
    """
    field = str(error["loc"][0]) if error["loc"] else "?"
    env_name = _ENV_NAMES.get(field, field.upper())
    cause = (error.get("ctx") or {}).get("error")
    message = str(cause) if error["type"] == "value_error" and cause else str(error["msg"])
    given = error.get("input")
    secret = field in _SECRET_FIELDS or env_name in {_ENV_NAMES[f] for f in _SECRET_FIELDS}
    if not secret and isinstance(given, str) and len(given) <= 80:
        message += f' (got "{given}")'
    return f"{env_name} is invalid: {message}"


KNOWN_VARIABLES = frozenset(_ENV_NAMES.values())
"""Every environment variable the settings read."""
_OUR_PREFIXES = ("PIKABOT_", "PIKA_")


def unknown_variables(
    environ: Mapping[str, str], env_file: Path | None = Path(".env")
) -> list[tuple[str, str | None]]:
    """``PIKABOT_*``/``PIKA_*`` names in the environment or ``.env`` that no setting reads.

    Each comes with the closest known name, if one is close: a misspelt setting would
    otherwise be ignored without a word and its default used.
    """
    names = set(environ)
    if env_file is not None and env_file.is_file():
        names |= set(dotenv_values(env_file))
    found = []
    for name in sorted(names):
        upper = name.upper()
        if not upper.startswith(_OUR_PREFIXES) or upper in KNOWN_VARIABLES:
            continue
        close = difflib.get_close_matches(upper, KNOWN_VARIABLES, n=1, cutoff=0.75)
        found.append((name, close[0] if close else None))
    return found


def load_settings(*, need_discord: bool, need_provider: bool, **overrides: object) -> Settings:
    """Read the settings; raise :class:`SettingsError` with one clear line on any problem."""
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise SettingsError(_describe_invalid(exc.errors()[0])) from None
    if need_discord and (
        settings.discord_token is None or not settings.discord_token.get_secret_value()
    ):
        raise SettingsError(
            "DISCORD_TOKEN is not set: put the bot token in the environment or .env"
        )
    fallback = settings.fallback_provider
    if need_provider and fallback is not None:
        if fallback == settings.provider:
            raise SettingsError("PIKABOT_FALLBACK_PROVIDER must differ from PIKA_PROVIDER")
        key = settings.provider_key(fallback)
        if key is None or not key.get_secret_value():
            raise SettingsError(
                f"{settings.provider_key_name(fallback)} is not set:"
                f" PIKABOT_FALLBACK_PROVIDER={fallback.value} needs its API key"
            )
    if settings.shard_ids is not None:
        count = settings.shard_count
        if count is None:
            raise SettingsError(
                "PIKABOT_SHARD_IDS needs PIKABOT_SHARD_COUNT (the shards of all processes)"
            )
        outside = [i for i in settings.shard_ids if i >= count]
        if outside:
            raise SettingsError(
                f"PIKABOT_SHARD_IDS names shard {outside[0]}, but with PIKABOT_SHARD_COUNT={count}"
                f" the shards are 0 to {count - 1}"
            )
    if need_provider:
        key = settings.provider_key()
        if key is None or not key.get_secret_value():
            raise SettingsError(
                f"{settings.provider_key_name()} is not set:"
                f" PIKA_PROVIDER={settings.provider.value}"
                " needs its API key in the environment or .env"
            )
    return settings
