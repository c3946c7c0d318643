"""Throughput under load: Pufa beside a bare Flask + wechatpy echo, same gunicorn, same run.

    python bench/load.py [--seconds 10] [--database-url postgresql://…] [--redis-url redis://…]

wrk (Debian's `wrk`) sends distinct signed plaintext-mode messages, each from its own
resident, at 8 and 32 connections, to gunicorn with 2 sync workers on loopback:

  - the echo: signature check, wechatpy parse, a text reply; nothing else;
  - Pufa, greetings ("你好": no retrieval) and real questions (the whole answer), on SQLite
    and, when --database-url is given, on PostgreSQL + Redis.

It prints requests per second, p50/p99 latency, errors and non-200 replies, and Pufa's
ratio to the echo. Requests are signed just before each run (the replay window is 300 s)
and split between wrk's threads, so no message and no nonce is sent twice.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot import lawbase  # noqa: E402
from bot.wechat.simulator import Simulator  # noqa: E402

TOKEN, APP_ID = "bench-load-token", "wx0123456789abcdef"
WRK_THREADS = 2
LUA = """
local requests, index = {}, 0
function setup(thread)
  thread:set("id", #__threads)
  table.insert(__threads, thread)
end
__threads = {}
function init(args)
  local n = 0
  for line in io.lines(args[1]) do
    if n % tonumber(args[2]) == id then
      local path, body = line:match("^(.-)\\t(.*)$")
      table.insert(requests, wrk.format("POST", path, {["Content-Type"] = "text/xml"}, body))
    end
    n = n + 1
  end
end
function request()
  index = index % #requests + 1
  return requests[index]
end
"""
ECHO = """
from flask import Flask, Response, request
from wechatpy import parse_message
from wechatpy.replies import create_reply
from wechatpy.utils import check_signature

app = Flask(__name__)


@app.post("/wechat")
def echo():
    a = request.args
    check_signature("{token}", a["signature"], a["timestamp"], a["nonce"])
    msg = parse_message(request.get_data())
    return Response(create_reply(msg.content, msg).render(), mimetype="application/xml")
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port: int, proc: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read()[-2000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError("server did not start")


def start(
    app_spec: str, env: dict[str, str], cwd: Path, worker_class: str = "sync"
) -> tuple[subprocess.Popen, int]:
    port = free_port()
    kind = ["-k", "gthread", "--threads", "4"] if worker_class == "gthread" else ["-k", "sync"]
    # Pufa's workers run deploy/gunicorn.conf.py's hooks as in production (its settings are
    # overridden by the flags below); the echo has no use for them
    conf = []
    if app_spec.startswith("bot:"):
        conf = ["-c", str(Path(__file__).resolve().parents[1] / "deploy" / "gunicorn.conf.py")]
    command = [sys.executable, "-m", "gunicorn", *conf, "-w", "2", *kind, "-b"]
    command += [f"127.0.0.1:{port}", "--access-logfile", "/dev/null", "--timeout", "30"]
    proc = subprocess.Popen(
        [*command, app_spec], env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    wait_for(port, proc)
    return proc, port


def warm_up(port: int, folder: Path) -> None:
    """Both workers have loaded the law base (gunicorn listens before they have)."""
    import urllib.request

    lines = requests_file(["你好", "老板拖欠工资"], 20, folder).read_text(encoding="utf-8")
    for line in lines.splitlines():
        path, body = line.split("\t", 1)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}{path}", data=body.encode(), method="POST"
        )
        urllib.request.urlopen(request, timeout=60).read()


def requests_file(texts: list[str], n: int, folder: Path) -> Path:
    """n distinct signed messages, each from its own resident, one per line."""
    sim = Simulator(token=TOKEN, app_id=APP_ID, mode="plain")
    path = folder / f"requests-{time.time_ns()}.txt"
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            xml = sim.text(texts[i % len(texts)], openid=f"o-load-{time.time_ns()}-{i}")
            args, body = sim.request(xml)
            query = "&".join(f"{k}={v}" for k, v in args.items())
            f.write(f"/wechat?{query}\t{body.decode()}\n")
    return path


def wrk(port: int, connections: int, seconds: int, data: Path, script: Path) -> dict:
    out = subprocess.run(
        ["wrk", f"-t{WRK_THREADS}", f"-c{connections}", f"-d{seconds}s", "--latency"]
        + ["-s", str(script), f"http://127.0.0.1:{port}", "--", str(data), str(WRK_THREADS)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    # the latency distribution's own lines ("+/- Stdev" columns end in % too)
    if not re.search(r"^\s+99%\s+[\d.]+\w+$", out, re.M):  # nothing answered in time
        sys.stderr.write(out)
        raise SystemExit("wrk measured no latency: see its output above")
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50": _ms(re.search(r"^\s+50%\s+(\S+)$", out, re.M).group(1)),
        "p99": _ms(re.search(r"^\s+99%\s+(\S+)$", out, re.M).group(1)),
        "errors": sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", out)),
        "non200": int(m.group(1))
        if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out))
        else 0,
        "total": int(re.search(r"(\d+) requests in", out).group(1)),
    }


def _ms(value: str) -> float:
    found = re.match(r"([\d.]+)(\w+)", value)
    if found is None:
        raise SystemExit(f"wrk printed a latency this script cannot read: {value!r}")
    number, unit = found.groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def pufa_env(
    folder: Path, database_url: str | None, redis_url: str | None, threads: int | None
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUFA_")}
    env.update(
        PUFA_WECHAT_TOKEN=TOKEN,
        PUFA_WECHAT_APP_ID=APP_ID,
        PUFA_DATABASE_URL=database_url or f"sqlite:///{folder / 'load.sqlite3'}",
        PUFA_SPOOL_DIR=str(folder / "spool"),
        PUFA_EMBEDDING_CACHE=str(ROOT / "instance" / "embeddings.sqlite3"),
    )
    if redis_url:
        env["PUFA_REDIS_URL"] = redis_url
    if threads:
        env["PUFA_EMBEDDING_THREADS"] = str(threads)
    return env


def migrate(env: dict[str, str], fresh_postgres: bool) -> None:
    if fresh_postgres:
        from sqlalchemy import create_engine

        url = env["PUFA_DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://")
        with create_engine(url).begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    cmd = [sys.executable, "-m", "flask", "--app", "bot", "db", "upgrade"]
    subprocess.run(cmd, env=env, cwd=ROOT, check=True, capture_output=True)


def run_echo(folder: Path, script: Path, seconds: int, worker_class: str) -> dict[int, dict]:
    echo_env = {**os.environ, "PYTHONPATH": str(folder)}
    proc, port = start("echo_app:app", echo_env, folder, worker_class)
    echo = {}
    try:
        for c in (8, 32):
            data = requests_file(["你好"], 40_000, folder)
            echo[c] = wrk(port, c, seconds, data, script)
            print(row(f"echo, {c} connections", echo[c], echo[c]), flush=True)
    finally:
        proc.terminate()
        proc.wait()
    return echo


def row(name: str, r: dict, echo: dict | None) -> str:
    ratio = f"{r['rps'] / echo['rps']:.2f}" if echo else "n/a"
    return (
        f"| {name} | {r['rps']:.0f} | {r['p50']:.1f} | {r['p99']:.1f} | "
        f"{r['errors']} | {r['non200']} | {ratio} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--database-url", help="PostgreSQL URL; its public schema is reset")
    parser.add_argument("--redis-url")
    parser.add_argument(
        "--embedding-threads",
        type=int,
        default=max(1, (os.cpu_count() or 2) // 2),
        help="per worker; default as deploy/gunicorn.conf.py sets it: cores ÷ workers",
    )
    parser.add_argument("--only", choices=["greetings", "questions"], help="one kind of load")
    parser.add_argument("--no-echo", action="store_true", help="skip the echo (ratios: n/a)")
    parser.add_argument("--worker-class", choices=["sync", "gthread"], default="sync")
    parser.add_argument(
        "--write-behind",
        choices=["on", "off", "both"],
        default="off",
        help="the Q&A log written behind the reply, or before it (the default); both: compare",
    )
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="pufa-load-"))
    script = folder / "requests.lua"
    script.write_text(LUA, encoding="utf-8")
    (folder / "echo_app.py").write_text(ECHO.replace("{token}", TOKEN), encoding="utf-8")
    questions = [q for s in lawbase.load(ROOT / "content").snippets for q in s.questions]
    random.Random(7).shuffle(questions)
    kinds = {"greetings": ["你好"], "questions": questions}
    kinds = {k: v for k, v in kinds.items() if args.only in (None, k)}
    setups = [("SQLite", None, None)]
    if args.database_url:
        setups.append(("PostgreSQL + Redis", args.database_url, args.redis_url))
    modes = ["on", "off"] if args.write_behind == "both" else [args.write_behind]
    setups = [
        (f"{label}{', write-behind' if m == 'on' else ''}", *rest, m)
        for label, *rest in setups
        for m in modes
    ]

    print("| server, load | req/s | p50 ms | p99 ms | errors | non-200 | ÷ echo |")
    print("|---|---|---|---|---|---|---|")
    echo = {} if args.no_echo else run_echo(folder, script, args.seconds, args.worker_class)
    for label, database_url, redis_url, write_behind in setups:
        env = pufa_env(folder, database_url, redis_url, args.embedding_threads)
        env["PUFA_JOURNAL_WRITE_BEHIND"] = "true" if write_behind == "on" else "false"
        migrate(env, fresh_postgres=bool(database_url))
        proc, port = start("bot:create_app()", env, ROOT, args.worker_class)
        warm_up(port, folder)
        try:
            for kind, texts in kinds.items():
                for c in (8, 32):
                    data = requests_file(texts, 20_000, folder)
                    result = wrk(port, c, args.seconds, data, script)
                    name = f"Pufa {label}, {kind}, {c} connections, {args.worker_class}"
                    print(row(name, result, echo.get(c)), flush=True)
        finally:
            proc.terminate()
            proc.wait()


if __name__ == "__main__":
    main()
