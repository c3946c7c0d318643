"""Moments are stored and read back as aware UTC datetimes, on SQLite as on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.exc import StatementError

from bot.extensions import db
from bot.models import Heartbeat
from tests.factories import make_app


def test_a_moment_comes_back_aware_and_in_utc(tmp_path):
    app = make_app(tmp_path)
    beijing = timezone(timedelta(hours=8))
    with app.app_context():
        db.session.add(
            Heartbeat(name="t", worker="w", beat_at=datetime(2026, 12, 4, 9, 0, tzinfo=beijing))
        )
        db.session.commit()
        db.session.expire_all()
        back = db.session.get(Heartbeat, "t").beat_at
    assert back == datetime(2026, 12, 4, 1, 0, tzinfo=UTC) and back.utcoffset() == timedelta(0)


def test_a_naive_moment_is_refused_not_guessed(tmp_path):
    app = make_app(tmp_path)
    with app.app_context():
        db.session.add(Heartbeat(name="n", worker="w", beat_at=datetime(2026, 12, 4, 9, 0)))
        with pytest.raises(StatementError, match="naive"):
            db.session.commit()
        db.session.rollback()
