"""Latency of answering, in-process and over HTTP under gunicorn, as WeChat would send it.

Sends at least 200 realistic, signed messages (residents' phrasings from the law base, held
out and shuffled, plus emergencies and questions the base cannot answer) and prints p50/p99
latency and replies per second:

  1. answering alone (answering.answer), in-process;
  2. the whole webhook in-process (signature, parsing, dedupe claim, answer, Q&A log);
  3. the webhook over HTTP, gunicorn with 2 workers, 1 and 4 concurrent clients.

    python bench/webhook.py [--n 300] [--mode safe] [--database-url URL] [--skip-http]
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot import answering, create_app, lawbase  # noqa: E402
from bot.extensions import db  # noqa: E402
from bot.wechat.simulator import Simulator, new_aes_key  # noqa: E402

EXTRA = [
    "劳动法第五十条",
    "消防法第十条",
    "山上着火了",
    "有人动刀了",
    "孩子不见了",
    "今天天气怎么样",
    "明天赶集卖猪能卖多少钱",
    "老板拖欠工资三个月了咋个整",
    "孩子不想读书了能去打工吗",
    "离婚了彩礼要退吗",
]


def questions(n: int) -> list[str]:
    base = lawbase.load(ROOT / "content")
    pool = [q for s in base.snippets for q in s.questions] + EXTRA * 5
    random.Random(7).shuffle(pool)
    return (pool * (n // len(pool) + 1))[:n]


def summary(name: str, latencies: list[float], wall: float) -> None:
    ms = sorted(x * 1000 for x in latencies)
    p50 = statistics.median(ms)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    print(
        f"{name:44s} n={len(ms):4d}  p50 {p50:7.2f} ms  p99 {p99:7.2f} ms  "
        f"max {ms[-1]:7.2f} ms  {len(ms) / wall:7.1f} replies/s"
    )


def bench_in_process(qs: list[str], mode: str, database_url: str) -> None:
    aes = new_aes_key()
    app = create_app(
        {
            "DATABASE_URL": database_url,
            "WECHAT_TOKEN": "bench-token",
            "WECHAT_AES_KEY": aes,
            "SPOOL_DIR": tempfile.mkdtemp(),
        }
    )
    with app.app_context():
        db.create_all()
        ctx = answering.context()
        for q in qs[:20]:  # warm-up
            answering.answer(q, ctx)
        lat, start = [], time.perf_counter()
        for q in qs:
            t = time.perf_counter()
            answering.answer(q, ctx)
            lat.append(time.perf_counter() - t)
        summary("answering only (in-process)", lat, time.perf_counter() - start)
    sim = Simulator(token="bench-token", app_id=app.config["WECHAT_APP_ID"], aes_key=aes, mode=mode)
    client = app.test_client()
    lat, start = [], time.perf_counter()
    for i, q in enumerate(qs):
        args, body = sim.request(sim.text(q, openid=f"o-bench-{i % 50}"))
        t = time.perf_counter()
        r = client.post("/wechat", query_string=args, data=body, content_type="text/xml")
        lat.append(time.perf_counter() - t)
        assert r.status_code == 200, r.status_code
    summary(f"webhook in-process ({mode} mode, with Q&A log)", lat, time.perf_counter() - start)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_http(qs: list[str], mode: str, database_url: str) -> None:
    port, aes = free_port(), new_aes_key()
    env = {
        **os.environ,
        "PUFA_DATABASE_URL": database_url,
        "PUFA_WECHAT_TOKEN": "bench-token",
        "PUFA_WECHAT_AES_KEY": aes,
        "PUFA_BIND": f"127.0.0.1:{port}",
        "PUFA_WORKERS": "2",
        "PUFA_ACCESS_LOG": "/dev/null",
        "PUFA_SPOOL_DIR": tempfile.mkdtemp(),
    }
    subprocess.run(
        [sys.executable, "-m", "flask", "--app", "bot", "db", "upgrade"],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/wechat"
    sim = Simulator(token="bench-token", app_id="wxpufademo000000", aes_key=aes, mode=mode)
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                requests.get(url, timeout=5)
                break
            except requests.RequestException:
                time.sleep(0.2)
        local = threading.local()

        def send(item: tuple[int, str]) -> float:
            i, q = item
            args, body = sim.request(sim.text(q, openid=f"o-http-{i % 50}"))
            if not hasattr(local, "session"):
                local.session = requests.Session()
            t = time.perf_counter()
            r = local.session.post(
                url, params=args, data=body, timeout=10, headers={"Content-Type": "text/xml"}
            )
            elapsed = time.perf_counter() - t
            assert r.status_code == 200, r.status_code
            return elapsed

        for q in qs[:20]:  # warm both workers
            send((0, q))
        for clients in (1, 4):
            start = time.perf_counter()
            with ThreadPoolExecutor(clients) as pool:
                lat = list(pool.map(send, enumerate(qs)))
            summary(
                f"webhook over HTTP (gunicorn 2 workers, {clients} client{'s' if clients > 1 else ''})",
                lat,
                time.perf_counter() - start,
            )
    finally:
        server.terminate()
        server.wait(timeout=20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--mode", default="safe", choices=("plain", "compatible", "safe"))
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--skip-http", action="store_true")
    args = parser.parse_args()

    def url() -> str:  # a fresh database for each run; a given URL is emptied first
        if args.database_url:
            reset(args.database_url)
            return args.database_url
        return f"sqlite:///{tempfile.mkdtemp()}/bench.sqlite3"

    qs = questions(max(args.n, 200))
    print(
        f"{len(qs)} signed messages, {args.mode} mode, "
        f"database {(args.database_url or 'sqlite').split('://')[0]}, {os.cpu_count()} cores"
    )
    bench_in_process(qs, args.mode, url())
    if not args.skip_http:
        bench_http(qs, args.mode, url())


def reset(database_url: str) -> None:
    app = create_app({"DATABASE_URL": database_url})
    with app.app_context():
        db.drop_all()
        with db.engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")


if __name__ == "__main__":
    main()
