"""Period boundaries in time zones, at a reset hour, across DST and year ends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.config import Period
from bot.periods import (
    UnknownTimeZone,
    month_bounds,
    next_reset,
    period_key,
    period_start,
    previous_key,
    zone,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def test_periods_reset_hour_in_a_time_zone():
    """A daily allowance resetting at 06:00 in Berlin (UTC+1 in November)."""
    before = utc(2026, 11, 21, 4, 59)
    after = utc(2026, 11, 21, 5, 0)
    assert period_key(Period.DAILY, before, BERLIN, 6) == "2026-11-20"
    assert period_key(Period.DAILY, after, BERLIN, 6) == "2026-11-21"
    assert next_reset(Period.DAILY, before, BERLIN, 6) == after
    assert next_reset(Period.DAILY, after, BERLIN, 6) == utc(2026, 11, 22, 5)


def test_periods_west_of_utc_day_starts_later():
    """New York's day starts at 05:00 UTC in winter; a UTC day would be wrong by five hours."""
    when = utc(2026, 1, 1, 3)  # still New Year's Eve in New York
    assert period_key(Period.MONTHLY, when, NEW_YORK) == "2025-12"
    assert period_key(Period.MONTHLY, when) == "2026-01"
    assert next_reset(Period.MONTHLY, when, NEW_YORK) == utc(2026, 1, 1, 5)


def test_periods_dst_days_last_23_and_25_hours():
    """Berlin's clocks go forward on 29 March 2026 and back on 25 October 2026."""
    spring = period_start(Period.DAILY, utc(2026, 3, 29, 12), BERLIN)
    assert next_reset(Period.DAILY, spring, BERLIN) - spring == timedelta(hours=23)
    autumn = period_start(Period.DAILY, utc(2026, 10, 25, 12), BERLIN)
    assert next_reset(Period.DAILY, autumn, BERLIN) - autumn == timedelta(hours=25)


def test_periods_reset_hour_inside_the_dst_gap():
    """02:30 does not exist in Berlin on 29 March: the period starts just after the jump."""
    start = period_start(Period.DAILY, utc(2026, 3, 29, 12), BERLIN, 2)
    assert start == utc(2026, 3, 29, 1)  # 03:00 CEST
    assert period_key(Period.DAILY, start, BERLIN, 2) == "2026-03-29"
    assert period_key(Period.DAILY, start - timedelta(microseconds=1), BERLIN, 2) == "2026-03-28"


def test_periods_weeks_start_on_monday_locally():
    """An ISO week in Berlin starts on Monday 00:00 local, Sunday 23:00 UTC."""
    assert period_key(Period.WEEKLY, utc(2026, 11, 22, 23, 30), BERLIN) == "2026-W48"
    assert period_key(Period.WEEKLY, utc(2026, 11, 22, 23, 30)) == "2026-W47"
    assert previous_key(Period.WEEKLY, utc(2026, 11, 23, 12)) == "2026-W47"


def test_periods_zone_names():
    """UTC and IANA names are accepted; anything else is a clear error."""
    assert zone(None) is UTC and zone("utc") is UTC
    assert zone("Europe/Berlin") == BERLIN
    with pytest.raises(UnknownTimeZone):
        zone("Mars/Olympus_Mons")


def test_periods_billing_month_is_utc():
    """USD caps count the provider's billing month in UTC."""
    assert month_bounds(utc(2026, 12, 31, 23)) == (utc(2026, 12, 1), utc(2027, 1, 1))


ZONES = st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"])


@given(
    when=st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1), timezones=st.just(UTC)
    ),
    period=st.sampled_from(list(Period)),
    name=ZONES,
    hour=st.integers(0, 23),
)
def test_periods_every_instant_lies_in_its_period(
    when: datetime, period: Period, name: str, hour: int
):
    """start <= when < next reset, the start has the same key, and the instant just before
    the start belongs to the previous period."""
    tz = zone(name)
    start = period_start(period, when, tz, hour)
    end = next_reset(period, when, tz, hour)
    assert start <= when < end
    assert period_key(period, start, tz, hour) == period_key(period, when, tz, hour)
    before = period_key(period, start - timedelta(microseconds=1), tz, hour)
    assert before == previous_key(period, when, tz, hour) != period_key(period, when, tz, hour)
