"""python -m scheduler as operators run it, and the posts commands staff use."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.factories import APP_ID, FAKE_SECRET, ROOT, database_url, flask_cli, fresh_database

pytestmark = pytest.mark.slow  # starts real processes

POST = """+++
title = "安全生产月：干活前先看安全"
audiences = ["全体", "企业"]
send_at = "{when}"
+++
六月是安全生产月。从业人员发现事故隐患，有权立即报告。
"""


def env_for(tmp_path, fake) -> dict[str, str]:
    return {
        **os.environ,
        "PUFA_DATABASE_URL": database_url(tmp_path),
        "PUFA_WECHAT_APP_ID": APP_ID,
        "PUFA_WECHAT_APP_SECRET": FAKE_SECRET,
        "PUFA_WECHAT_API_BASE": fake.base,
        "PUFA_SCHEDULER_TICK_SECONDS": "1",
        "PUFA_SPOOL_DIR": str(tmp_path / "spool"),
    }


flask = flask_cli


def test_staff_queue_a_post_and_the_scheduler_process_publishes_it_once(tmp_path, fake_api):
    env = env_for(tmp_path, fake_api)
    fresh_database(env)
    when = (datetime.now(UTC) + timedelta(hours=8, seconds=3)).strftime("%Y-%m-%d %H:%M:%S")
    path = tmp_path / "safety.md"
    path.write_text(POST.format(when=when), encoding="utf-8")
    created = flask(env, "posts", "create", str(path), "--by", "张三")
    assert created.returncode == 0 and "已创建草稿 #1" in created.stdout, created.stderr
    assert "现在是待审核" in flask(env, "posts", "submit", "1", "--by", "张三").stdout
    approved = flask(env, "posts", "approve", "1", "--by", "李四")
    assert "已排期" in approved.stdout
    assert "每天只能群发 1 次" in approved.stderr  # two audiences on a subscription account

    log = open(tmp_path / "scheduler.log", "w")  # noqa: SIM115 (closed below)
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "scheduler"], env=env, cwd=ROOT, stdout=log, stderr=log
    )
    try:
        deadline = time.time() + 40
        while time.time() < deadline and len(fake_api.sends) < 2:
            time.sleep(0.5)
        time.sleep(2)  # a few more ticks: nothing more may be sent
    finally:
        scheduler.terminate()
        scheduler.wait(timeout=20)
        log.close()
    assert len(fake_api.sends) == 2, (tmp_path / "scheduler.log").read_text()[-3000:]
    shown = flask(env, "posts", "show", "1").stdout
    assert "已发布" in shown and "李四" in shown and "approve" in shown
    listed = flask(env, "posts", "list").stdout
    assert "已发布" in listed and "安全生产月" in listed

    restarted = subprocess.Popen(
        [sys.executable, "-m", "scheduler"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(4)  # a restart re-reads everything and must not resend
    restarted.terminate()
    restarted.wait(timeout=20)
    assert len(fake_api.sends) == 2
    assert len([c for c in fake_api.calls if c["endpoint"] == "message/mass/sendall"]) == 2


def test_wrong_steps_are_refused_with_a_reason(tmp_path, fake_api):
    env = env_for(tmp_path, fake_api)
    fresh_database(env)
    path = tmp_path / "bad.md"
    path.write_text("title = 没有设置块\n正文", encoding="utf-8")
    result = flask(env, "posts", "create", str(path))
    assert result.returncode == 1 and "+++" in result.stderr
    path.write_text(POST.format(when="2027-06-01 09:00"), encoding="utf-8")
    flask(env, "posts", "create", str(path))
    refused = flask(env, "posts", "approve", "1", "--by", "李四")
    assert refused.returncode == 1 and "现在是草稿，不能审核通过" in refused.stderr


def _wait_for(path, text: str, timeout: float = 40) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path.exists() and text in path.read_text(encoding="utf-8", errors="replace"):
            return True
        time.sleep(0.3)
    return False


def test_a_standby_scheduler_takes_over_when_the_active_one_dies(tmp_path, fake_api):
    env = {**env_for(tmp_path, fake_api), "PUFA_SCHEDULER_STANDBY_POLL_SECONDS": "1"}
    fresh_database(env)
    procs, logs = [], [tmp_path / "first.log", tmp_path / "second.log"]
    try:
        for log_path in logs:
            with open(log_path, "w") as log:
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "scheduler"],
                        env=env,
                        cwd=ROOT,
                        stdout=log,
                        stderr=log,
                    )
                )
            if log_path == logs[0]:
                assert _wait_for(log_path, "scheduler active"), log_path.read_text()[-2000:]
        assert _wait_for(logs[1], "scheduler standby"), logs[1].read_text()[-2000:]
        time.sleep(3)
        assert "scheduler active" not in logs[1].read_text()  # never two at once
        procs[0].kill()  # the active one dies without a word
        assert _wait_for(logs[1], "scheduler active", timeout=30), logs[1].read_text()[-2000:]
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(timeout=20)
