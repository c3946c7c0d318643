"""The campaign calendar: every rule yields the right dates, across the new year too."""

from __future__ import annotations

from datetime import date

import pytest

from bot import campaigns
from bot.errors import ContentError
from tests.factories import REAL_CONTENT


def test_a_fixed_day_recurs_every_year():
    assert campaigns.starts("solar 12-04", date(2026, 11, 1), date(2027, 12, 31)) == [
        date(2026, 12, 4),
        date(2027, 12, 4),
    ]


def test_the_fire_season_spans_the_new_year_and_begins_once():
    rule = "range 12-01..06-15"
    for day in (date(2026, 12, 1), date(2026, 12, 31), date(2027, 1, 1), date(2027, 6, 15)):
        assert campaigns.covers(rule, day), day
    assert not campaigns.covers(rule, date(2027, 6, 16))
    assert not campaigns.covers(rule, date(2026, 11, 30))
    assert campaigns.starts(rule, date(2026, 1, 1), date(2027, 12, 31)) == [
        date(2026, 12, 1),
        date(2027, 12, 1),
    ]


def test_a_month_long_campaign_begins_on_the_first():
    assert campaigns.starts("month 5", date(2026, 6, 1), date(2027, 12, 31)) == [date(2027, 5, 1)]
    assert len(list(campaigns.days("month 5", date(2027, 1, 1), date(2027, 12, 31)))) == 31


def test_spring_festival_follows_the_lunar_calendar():
    assert campaigns.starts("lunar 01-01", date(2026, 1, 1), date(2028, 12, 31)) == [
        date(2026, 2, 17),
        date(2027, 2, 6),
        date(2028, 1, 26),
    ]


def test_the_migrant_workers_homecoming_spans_the_lunar_new_year():
    rule = "lunar 12-15..01-15"  # 腊月十五 to 正月十五
    assert campaigns.next_start(rule, date(2026, 11, 25)) == date(2027, 1, 22)
    assert campaigns.covers(rule, date(2027, 1, 31)) and campaigns.covers(rule, date(2027, 2, 20))
    assert not campaigns.covers(rule, date(2027, 2, 21))


def test_market_days_fall_on_the_threes_and_eights_across_the_new_year():
    days = list(campaigns.days("market 3,8", date(2026, 12, 20), date(2027, 1, 10)))
    assert days == [date(2026, 12, 23), date(2026, 12, 28), date(2027, 1, 3), date(2027, 1, 8)]


def test_a_five_day_market_cycle_runs_on_across_the_new_year():
    days = list(
        campaigns.days("every 5 days from 2026-12-27", date(2026, 12, 25), date(2027, 1, 7))
    )
    assert days == [date(2026, 12, 27), date(2027, 1, 1), date(2027, 1, 6)]


def test_lunar_market_days_count_lunar_days():
    days = list(campaigns.days("lunar-market 1,6", date(2027, 2, 6), date(2027, 2, 17)))
    assert days == [date(2027, 2, 6), date(2027, 2, 11), date(2027, 2, 16)]  # 正月初一、初六、十一


def test_the_township_calendar_loads_with_every_key_date():
    entries = campaigns.load(REAL_CONTENT / "calendar.toml")
    for needed in (
        "constitution-day",
        "civil-code-month",
        "work-safety-month",
        "consumer-day",
        "national-security-day",
        "anti-drug-day",
        "fire-safety-day",
        "traffic-safety-day",
        "spring-term",
        "autumn-term",
        "forest-fire-season",
        "spring-festival",
        "market-day",
    ):
        assert needed in entries, needed
    assert all(entries[e].laws for e in entries)


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("solar 02-30", "day is out of range"),
        ("monthly 5", "is not one of"),
        ("month 13", "month must be 1-12"),
        ("lunar 13-01", "lunar month"),
    ],
)
def test_a_bad_rule_is_reported_with_its_entry(tmp_path, rule, message):
    path = tmp_path / "calendar.toml"
    path.write_text(f'[[date]]\nid = "x-day"\nname = "某日"\nrule = "{rule}"\n', encoding="utf-8")
    with pytest.raises(ContentError) as caught:
        campaigns.load(path)
    assert "date 'x-day': field 'rule'" in str(caught.value) and message in str(caught.value)
