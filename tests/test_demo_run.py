"""The README's demo command: chat page, stand-in WeChat API and scheduler in one run."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests

from tests.factories import ROOT, flask_cli

pytestmark = pytest.mark.slow  # starts real processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_demo_answers_residents_and_publishes_a_queued_post(tmp_path):
    env = {
        **os.environ,
        "PUFA_DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        "PUFA_SPOOL_DIR": str(tmp_path / "spool"),
    }
    for key in ("PUFA_WECHAT_APP_SECRET", "PUFA_WECHAT_API_BASE", "PUFA_ENV"):
        env.pop(key, None)

    def run(*args: str):
        return flask_cli(env, *args)

    assert run("db", "upgrade").returncode == 0
    web, api = free_port(), free_port()
    log = open(tmp_path / "demo.log", "w")  # noqa: SIM115 (closed below)
    demo = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "flask",
            "--app",
            "bot",
            "demo",
            "--port",
            str(web),
            "--api-port",
            str(api),
            "--tick",
            "1",
        ],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=log,
    )
    try:
        reply = None
        for _ in range(60):
            try:
                reply = requests.post(
                    f"http://127.0.0.1:{web}/demo/send",
                    json={"text": "老板拖欠工资咋个整"},
                    timeout=5,
                ).json()["reply"]
                break
            except requests.RequestException:
                time.sleep(0.5)
        assert reply and "第五十条" in reply
        printed = (tmp_path / "demo.log").read_text(encoding="utf-8")
        assert "/console/" in printed and "zhangsan" in printed and "pufa-demo-2026" in printed
        console = requests.Session()
        page = console.get(f"http://127.0.0.1:{web}/console/login", timeout=5).text
        token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
        signed_in = console.post(
            f"http://127.0.0.1:{web}/console/login",
            data={"username": "lingdao", "password": "pufa-demo-2026", "csrf_token": token},
            timeout=5,
        )
        assert "刘书记" in signed_in.text and "法律咨询人次" in signed_in.text
        when = (datetime.now(UTC) + timedelta(hours=8, seconds=2)).strftime("%Y-%m-%d %H:%M:%S")
        post = tmp_path / "p.md"
        post.write_text(
            f'+++\ntitle = "春节返乡防诈骗"\naudiences = ["外出务工人员"]\nsend_at = "{when}"\n+++\n'
            "陌生人让你转账、借银行卡，一律不理。",
            encoding="utf-8",
        )
        for step, by in (
            (("posts", "create", str(post)), "张三"),
            (("posts", "submit", "1"), "张三"),
            (("posts", "approve", "1"), "李四"),  # a second person approves
        ):
            assert run(*step, "--by", by).returncode == 0
        sends = {}
        for _ in range(40):
            sends = requests.get(f"http://127.0.0.1:{api}/_fake/calls", timeout=5).json()["sends"]
            if sends:
                break
            time.sleep(0.5)
        [sent] = sends.values()
        assert sent["data"]["text"]["content"].startswith("【春节返乡防诈骗】\n\n陌生人让你转账")
        assert sent["data"]["filter"] == {"is_to_all": False, "tag_id": 103}
        assert "已发布" in run("posts", "list").stdout
        printed = (tmp_path / "demo.log").read_text(encoding="utf-8")
        assert "Running job" not in printed  # the scheduler's every tick is not news to staff
    finally:
        demo.terminate()
        demo.wait(timeout=20)
        log.close()
