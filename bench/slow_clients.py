"""Slow clients against gunicorn's sync workers, with and without nginx in front.

    python bench/slow_clients.py [--slow 4] [--seconds 8]

`--slow` clients open connections and send their request headers one byte a second (the
slowloris pattern); meanwhile 3 real signed messages are sent, each given 8 s. Run first
against gunicorn directly (2 sync workers), then through nginx configured from
`deploy/nginx.conf.sample` (TLS left out, the same buffering and timeouts). Prints how many
real messages were answered and how long each took. Needs Debian's nginx.
"""

from __future__ import annotations

import argparse
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.load import TOKEN, free_port, migrate, pufa_env, start, warm_up  # noqa: E402
from bot.wechat.simulator import Simulator  # noqa: E402


def slowloris(port: int, seconds: float, stop: threading.Event) -> None:
    """Send a request's headers one byte a second, never finishing them."""
    head = b"POST /wechat HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nX-Pad: " + b"a" * 200
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            for byte in head:
                if stop.is_set():
                    return
                s.send(bytes([byte]))
                time.sleep(1)
    except OSError:
        return  # the server cut us off: that is the defence working


def real_messages(port: int, n: int = 3) -> list[float | None]:
    sim = Simulator(token=TOKEN, app_id="wx0123456789abcdef", mode="plain")
    took: list[float | None] = []
    for i in range(n):
        args, body = sim.request(sim.text("老板拖欠工资咋个整", openid=f"o-real-{i}"))
        started = time.perf_counter()
        try:
            r = requests.post(f"http://127.0.0.1:{port}/wechat", params=args, data=body, timeout=8)
            took.append(time.perf_counter() - started if r.status_code == 200 else None)
        except requests.RequestException:
            took.append(None)
    return took


def nginx_in_front(upstream: int, folder: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    site = (ROOT / "deploy" / "nginx.conf.sample").read_text(encoding="utf-8")
    site = re.sub(r"server \{\n    listen 80;.*?\n\}\n", "", site, flags=re.S)
    site = site.replace("listen 443 ssl http2;", f"listen 127.0.0.1:{port};")
    site = re.sub(r"\n\s*ssl_\w+[^\n]*", "", site).replace(
        "127.0.0.1:8000", f"127.0.0.1:{upstream}"
    )
    conf = folder / "nginx.conf"
    conf.write_text(
        f"daemon off;\npid {folder}/nginx.pid;\nerror_log {folder}/error.log;\nevents {{}}\n"
        f"http {{\naccess_log off;\nclient_body_temp_path {folder};\nproxy_temp_path {folder};\n"
        f"{site}\n}}\n",
        encoding="utf-8",
    )
    proc = subprocess.Popen(["nginx", "-c", str(conf)], stderr=subprocess.PIPE)
    time.sleep(1)
    return proc, port


def trial(port: int, slow: int, seconds: float) -> list[float | None]:
    stop = threading.Event()
    threads = [threading.Thread(target=slowloris, args=(port, seconds, stop)) for _ in range(slow)]
    for t in threads:
        t.start()
    time.sleep(1)
    took = real_messages(port)
    stop.set()
    return took


def show(name: str, took: list[float | None]) -> None:
    answered = [t for t in took if t is not None]
    times = ", ".join("lost" if t is None else f"{t * 1000:.0f} ms" for t in took)
    print(f"| {name} | {len(answered)} of {len(took)} | {times} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--slow", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=8)
    args = parser.parse_args()
    if not shutil.which("nginx"):
        sys.exit("needs nginx (apt-get install nginx-light)")
    folder = Path(tempfile.mkdtemp(prefix="pufa-slow-"))
    env = pufa_env(folder, None, None, 1)
    migrate(env, fresh_postgres=False)
    gunicorn, port = start("bot:create_app()", env, ROOT)
    warm_up(port, folder)
    print(f"| {args.slow} slow-header clients | real messages answered | each |")
    print("|---|---|---|")
    try:
        show("gunicorn alone (2 sync workers)", trial(port, args.slow, args.seconds))
        time.sleep(args.seconds)  # let the slow connections drain
        nginx, front = nginx_in_front(port, folder)
        try:
            show("nginx in front (deploy/nginx.conf.sample)", trial(front, args.slow, args.seconds))
        finally:
            nginx.terminate()
            nginx.wait()
    finally:
        gunicorn.terminate()
        gunicorn.wait()


if __name__ == "__main__":
    main()
