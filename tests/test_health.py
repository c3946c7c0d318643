"""What an operator's monitor sees: liveness, each dependency's readiness, and metrics."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from bot import health
from tests.factories import make_app


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


def test_log_lines_are_json_with_the_request_id_and_masked(tmp_path, plain_wechat):
    import io
    import json
    import logging

    from bot import logs

    app = make_app(tmp_path, LOG_FORMAT="json")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logging.getLogger().addHandler(handler)
    try:
        logs.init_app(app)  # as at start-up: the handler gets the format and the id
        from bot.privacy import install_log_filter

        install_log_filter(app)
        kwargs = plain_wechat.text_message("工资")
        kwargs["query_string"]["signature"] = "0" * 40  # refused, and logged
        response = app.test_client().post(headers={"X-Request-Id": "nginx-abc123"}, **kwargs)
        with app.test_request_context(headers={"X-Request-Id": "r-2"}):
            app.preprocess_request()
            logging.getLogger("bot.test").warning("resident wrote 13812345678")
    finally:
        logging.getLogger().removeHandler(handler)
    assert response.headers["X-Request-Id"] == "nginx-abc123"
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    refused = next(r for r in records if "webhook refused" in r["message"])
    assert refused["request_id"] == "nginx-abc123" and refused["level"] == "WARNING"
    wrote = next(r for r in records if "resident wrote" in r["message"])
    assert wrote["request_id"] == "r-2" and "13812345678" not in wrote["message"]
