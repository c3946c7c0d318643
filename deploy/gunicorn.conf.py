"""Gunicorn settings for the web workers: gunicorn -c deploy/gunicorn.conf.py

Each worker builds its own app (and its own in-memory law index) through bot:create_app().
WeChat gives a reply 5 seconds, so a request that takes longer than that is already lost:
the timeout only guards against a stuck worker.
"""

import multiprocessing
import os

wsgi_app = "bot:create_app()"
bind = os.environ.get("PUFA_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("PUFA_WORKERS", min(4, multiprocessing.cpu_count() * 2)))
threads = int(os.environ.get("PUFA_THREADS", "1"))
# One embedding thread per core and worker: more threads than cores spin against each other
# (bench/load.py, 2 workers on 2 cores: 2 threads each gave 4-11 questions/s, 1 gave 24-40).
os.environ.setdefault(
    "PUFA_EMBEDDING_THREADS", str(max(1, multiprocessing.cpu_count() // workers))
)
timeout = 30
graceful_timeout = 20
keepalive = 5
preload_app = False  # each worker loads content itself; a reload never needs a restart
accesslog = os.environ.get("PUFA_ACCESS_LOG", "-")
# The access log records paths and query strings: WeChat's carry signatures and the
# sender's openid, so log only method, path, status and timing.
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms'
errorlog = "-"


def post_worker_init(worker):
    """Read what squeezing a long message needs (jieba's dictionary and IDF table, ~1 s) before
    the worker takes requests, not while a resident's long message waits."""
    from bot import semantic

    semantic.warm()


def child_exit(server, worker):
    """A worker's metrics files are merged into the totals when it exits (multiprocess mode)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
