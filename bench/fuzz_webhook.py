"""Fuzz the webhook's XML, signature and crypto path with atheris (coverage-guided).

    python bench/fuzz_webhook.py -runs=30000      # prints the counts for docs/security.md

Each input chooses a mode (plain, compatible, safe), whether to sign it correctly, and a
body; correctly signed inputs reach the decryption, the XML parser and dispatch. Any 500, any
exception out of the app, or a reply over 5 s is a finding and stops the run with the input.
The app is the real one on a throwaway SQLite file, with the small test base of laws.
"""

from __future__ import annotations

import collections
import logging
import sys
import tempfile
import time
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["bot.wechat", "wechatpy", "xmltodict"]):
    from bot import create_app
    from bot.extensions import db
    from bot.wechat.simulator import Simulator

ROOT = Path(__file__).resolve().parent.parent
TOKEN, APP_ID = "fuzz-token", "wx0123456789abcdef"
AES_KEY = "PufaTestKey0123456789abcdefghijklmnopqrstuv"
MODES = ["plain", "compatible", "safe"]
counts: collections.Counter[str] = collections.Counter()


def build_app():
    folder = Path(tempfile.mkdtemp(prefix="pufa-fuzz-"))
    app = create_app(
        {
            "TESTING": True,
            "WECHAT_TOKEN": TOKEN,
            "WECHAT_APP_ID": APP_ID,
            "WECHAT_AES_KEY": AES_KEY,
            "DATABASE_URL": f"sqlite:///{folder / 'fuzz.sqlite3'}",
            "SPOOL_DIR": str(folder / "spool"),
            "CONTENT_DIR": str(ROOT / "tests" / "fixtures" / "content"),
            "EMBEDDINGS": False,
            "RATE_LIMITS": False,
        }
    )
    with app.app_context():
        db.create_all()
    return app


APP = build_app()
CLIENT = APP.test_client()


def one_input(data: bytes) -> None:
    if not data:
        counts["empty → skipped"] += 1
        return
    mode, signed = MODES[data[0] % 3], not data[0] & 0x80  # the first byte steers
    body = data[1:].decode("utf-8", "replace")
    sim = Simulator(token=TOKEN, app_id=APP_ID, aes_key=AES_KEY, mode=mode)
    args, payload = sim.request(body)
    if not signed:
        args = {**args, "signature": "0" * 40}
    started = time.perf_counter()
    response = CLIENT.post("/wechat", query_string=args, data=payload, content_type="text/xml")
    elapsed = time.perf_counter() - started
    counts[f"{mode} {'signed' if signed else 'unsigned'} → {response.status_code}"] += 1
    if response.status_code >= 500 or elapsed > 5:
        raise RuntimeError(f"{response.status_code} after {elapsed:.1f}s for {body!r}")
    if sum(counts.values()) % REPORT_EVERY == 0:
        report()  # libFuzzer ends the process without running atexit handlers


def report() -> None:
    total = sum(counts.values())
    print(f"\n{total} inputs; no 500, none over 5 s", flush=True)
    for key, n in sorted(counts.items()):
        print(f"  {key}: {n}", flush=True)


REPORT_EVERY = 10_000

if __name__ == "__main__":
    logging.getLogger("bot").setLevel(logging.ERROR)  # each refusal is logged: too many here
    seeds = Path(tempfile.mkdtemp(prefix="pufa-fuzz-seeds-"))
    sim = Simulator(token=TOKEN, app_id=APP_ID, aes_key=AES_KEY)
    messages = [
        sim.text("老板拖欠工资"),
        sim.event("subscribe", key="qrscene_7"),
        sim.voice("工资"),
    ]
    for n, xml in enumerate(messages * 3):
        (seeds / f"seed{n}").write_bytes(bytes([n % 3]) + xml.encode())  # each in each mode
    atheris.Setup([*sys.argv, str(seeds)], one_input)
    atheris.Fuzz()
