"""Real gunicorn workers: WeChat's retries of one message, spread over workers, answered once."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

import pytest
import requests
from sqlalchemy import create_engine, text

from bot.wechat.simulator import Simulator
from tests.factories import ROOT, TOKEN, database_url, fresh_database

pytestmark = pytest.mark.slow  # starts real processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(params=["database", "redis"])
def server(request, tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "PUFA_DATABASE_URL": database_url(tmp_path),
        "PUFA_WECHAT_TOKEN": TOKEN,
        "PUFA_BIND": f"127.0.0.1:{port}",
        "PUFA_WORKERS": "2",
        "PUFA_ACCESS_LOG": "/dev/null",
        "PUFA_SPOOL_DIR": str(tmp_path / "spool"),
    }
    if request.param == "redis":
        env["PUFA_REDIS_URL"] = request.getfixturevalue("redis_url")
    fresh_database(env)
    engine = create_engine(
        env["PUFA_DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://")
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/wechat"
    for _ in range(100):
        try:
            requests.get(url, timeout=2)
            break
        except requests.RequestException:
            time.sleep(0.2)
    yield url, engine
    proc.terminate()
    proc.wait(timeout=20)
    engine.dispose()


def test_three_deliveries_of_one_message_across_workers_are_answered_and_logged_once(server):
    url, engine = server
    sim = Simulator(token=TOKEN, app_id="wxpufademo000000")
    xml = sim.text("老板拖欠工资三个月了咋个整", msg_id=424242)
    replies, barrier = [], threading.Barrier(3)

    def deliver():
        args, body = sim.request(xml)
        barrier.wait()
        response = requests.post(url, params=args, data=body, timeout=10)
        replies.append((response.status_code, sim.reply_text(response.content)))

    threads = [threading.Thread(target=deliver) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [status for status, _ in replies] == [200, 200, 200]
    assert len({reply for _, reply in replies}) == 1 and "劳动法" in replies[0][1]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM exchanges")).scalar() == 1
