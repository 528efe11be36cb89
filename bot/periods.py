"""Allowance periods: which period an instant falls in, and when the next one starts.

Periods are computed in UTC: a daily allowance starts again at 00:00 UTC, a weekly one on
Monday 00:00 UTC, a monthly one on the 1st at 00:00 UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.config import Period


def period_key(period: Period, when: datetime) -> str:
    """A sortable label of the period containing ``when``: 2026-11-21, 2026-W47, 2026-11."""
    when = when.astimezone(UTC)
    match period:
        case Period.DAILY:
            return when.strftime("%Y-%m-%d")
        case Period.WEEKLY:
            year, week, _ = when.isocalendar()
            return f"{year:04d}-W{week:02d}"
        case Period.MONTHLY:
            return when.strftime("%Y-%m")


def period_start(period: Period, when: datetime) -> datetime:
    """The first instant of the period containing ``when``."""
    when = when.astimezone(UTC)
    midnight = when.replace(hour=0, minute=0, second=0, microsecond=0)
    match period:
        case Period.DAILY:
            return midnight
        case Period.WEEKLY:
            return midnight - timedelta(days=midnight.weekday())
        case Period.MONTHLY:
            return midnight.replace(day=1)


def next_reset(period: Period, when: datetime) -> datetime:
    """The first instant of the period after the one containing ``when``."""
    start = period_start(period, when)
    match period:
        case Period.DAILY:
            return start + timedelta(days=1)
        case Period.WEEKLY:
            return start + timedelta(weeks=1)
        case Period.MONTHLY:
            if start.month == 12:
                return start.replace(year=start.year + 1, month=1)
            return start.replace(month=start.month + 1)
