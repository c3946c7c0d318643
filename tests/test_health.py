"""What an operator's monitor sees: liveness, each dependency's readiness, and metrics."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from bot import health
from tests.conftest import make_app


def beat(app, age: timedelta) -> None:
    with app.app_context():
        health.beat(health.SCHEDULER, "host:1", now=datetime.now(UTC) - age)


def test_liveness_asks_nothing_of_the_dependencies(app, client, outage):
    outage.start()
    assert client.get("/healthz").status_code == 200


def test_readiness_names_each_dependency_and_the_scheduler_heartbeat(app, client):
    first = client.get("/readyz")
    assert first.status_code == 503
    checks = first.get_json()["checks"]
    assert checks["database"]["ok"] and checks["content"]["ok"] and checks["redis"]["ok"]
    assert not checks["scheduler"]["ok"] and "no tick" in checks["scheduler"]["detail"]
    beat(app, timedelta(seconds=5))
    assert client.get("/readyz").get_json()["ready"] is True
    beat(app, timedelta(minutes=10))  # the scheduler died ten minutes ago
    stale = client.get("/readyz")
    assert (
        stale.status_code == 503
        and "last tick" in stale.get_json()["checks"]["scheduler"]["detail"]
    )


def test_readiness_reports_a_database_outage(app, client, outage):
    outage.start()
    checks = client.get("/readyz").get_json()["checks"]
    assert not checks["database"]["ok"] and "OperationalError" in checks["database"]["detail"]


def test_readiness_reports_an_unreachable_redis(tmp_path):
    app = make_app(tmp_path, REDIS_URL="redis://127.0.0.1:1/0")
    checks = app.test_client().get("/readyz").get_json()["checks"]
    assert not checks["redis"]["ok"]


def answered(text: str) -> float:
    found = re.search(r'^pufa_replies_total\{outcome="answered"\} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


def test_metrics_count_replies_by_outcome_and_show_the_spool(app, client, plain_wechat, outage):
    before = answered(client.get("/metrics").get_data(as_text=True))
    plain_wechat.ask(client, "老板拖欠工资怎么办")
    outage.start()
    plain_wechat.ask(client, "工资被拖欠了咋个整")
    outage.end()
    text = client.get("/metrics").get_data(as_text=True)
    assert answered(text) == before + 2
    assert "pufa_reply_seconds_bucket" in text
    assert re.search(r"^pufa_spool_entries 1\.0$", text, re.M)
    assert re.search(r"^pufa_quarantined_entries 0\.0$", text, re.M)


def test_metrics_can_require_a_token(tmp_path):
    client = make_app(tmp_path, METRICS_TOKEN="s3cret-metrics").test_client()
    assert client.get("/metrics").status_code == 401
    ok = client.get("/metrics", headers={"Authorization": "Bearer s3cret-metrics"})
    assert ok.status_code == 200
