"""Allowance periods: which period an instant falls in, and when the next one starts.

A period starts at ``reset_hour`` o'clock on the wall clock of a time zone (an IANA name such
as ``Europe/Berlin``; UTC unless a moderator or ``PIKABOT_TIMEZONE`` says otherwise): a daily
allowance starts again every day at that hour, a weekly one on Monday, a monthly one on the
1st. With the defaults (UTC, hour 0) a day starts at 00:00 UTC.

Daylight saving time is handled on the wall clock: a day may last 23 or 25 hours, and a reset
hour that does not exist on the day the clocks go forward happens at the first instant after
the jump. The key of a period is a label of its first local day: ``2026-11-21``, ``2026-W47``
(ISO week), ``2026-11``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.config import Period


class UnknownTimeZone(ValueError):
    """A time zone name the system's IANA database does not know."""


def zone(name: str | None) -> tzinfo:
    """The time zone called ``name`` (``UTC`` for None or empty); :class:`UnknownTimeZone`."""
    if not name or name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UnknownTimeZone(
            f"unknown time zone {name!r} (use an IANA name such as Europe/Berlin)"
        ) from None


def _first_day(period: Period, when: datetime, tz: tzinfo, reset_hour: int) -> date:
    """The local date on which the period containing ``when`` started."""
    local = when.astimezone(tz).replace(tzinfo=None) - timedelta(hours=reset_hour)
    day = local.date()
    match period:
        case Period.DAILY:
            return day
        case Period.WEEKLY:
            return day - timedelta(days=day.weekday())
        case Period.MONTHLY:
            return day.replace(day=1)


def _instant(day: date, tz: tzinfo, reset_hour: int) -> datetime:
    """The UTC instant of ``reset_hour`` o'clock on ``day`` in ``tz`` (DST gaps: after the jump)."""
    return datetime.combine(day, time(reset_hour), tzinfo=tz).astimezone(UTC)


def _following(period: Period, day: date) -> date:
    match period:
        case Period.DAILY:
            return day + timedelta(days=1)
        case Period.WEEKLY:
            return day + timedelta(weeks=1)
        case Period.MONTHLY:
            if day.month == 12:
                return day.replace(year=day.year + 1, month=1)
            return day.replace(month=day.month + 1)


def _label(period: Period, day: date) -> str:
    match period:
        case Period.DAILY:
            return day.isoformat()
        case Period.WEEKLY:
            year, week, _ = day.isocalendar()
            return f"{year:04d}-W{week:02d}"
        case Period.MONTHLY:
            return f"{day.year:04d}-{day.month:02d}"


def period_key(period: Period, when: datetime, tz: tzinfo = UTC, reset_hour: int = 0) -> str:
    """A sortable label of the period containing ``when``: 2026-11-21, 2026-W47, 2026-11."""
    return _label(period, _first_day(period, when, tz, reset_hour))


def period_start(period: Period, when: datetime, tz: tzinfo = UTC, reset_hour: int = 0) -> datetime:
    """The first instant (in UTC) of the period containing ``when``."""
    return _instant(_first_day(period, when, tz, reset_hour), tz, reset_hour)


def next_reset(period: Period, when: datetime, tz: tzinfo = UTC, reset_hour: int = 0) -> datetime:
    """The first instant (in UTC) of the period after the one containing ``when``."""
    first = _first_day(period, when, tz, reset_hour)
    return _instant(_following(period, first), tz, reset_hour)


def previous_key(period: Period, when: datetime, tz: tzinfo = UTC, reset_hour: int = 0) -> str:
    """The key of the period just before the one containing ``when`` (for rollover)."""
    start = period_start(period, when, tz, reset_hour)
    return period_key(period, start - timedelta(microseconds=1), tz, reset_hour)


def month_bounds(when: datetime) -> tuple[datetime, datetime]:
    """The UTC calendar month containing ``when``, as [start, end): the provider's billing month."""
    start = when.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )
    return start, end
