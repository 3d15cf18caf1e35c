"""Configuration: safe defaults, then ``instance/config.py``, then ``SURVEY_*`` environment
variables, then the test config (later wins).

``DATABASE_URL`` is the one database setting users give; it is translated into Flask-SQLAlchemy's
keys here. With nothing set the service uses ``instance/survey.sqlite3`` and a secret key that is
generated once and kept in ``instance/secret_key``.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from flask import Flask


class Defaults:
    DATABASE_URL: str | None = None  # None: the SQLite file in the instance folder
    SECRET_KEY: str | None = None  # None: generated and kept in the instance folder
    # Request limits (promise S9): a submission of the op-ed questionnaire is about 4 KB.
    MAX_CONTENT_LENGTH = 256 * 1024
    JSON_MAX_DEPTH = 20
    TEXT_ANSWER_MAX_LENGTH = 5000
    # SQLAlchemy pool: bounded waits (promise R9). A connection that died (database restarted,
    # promise R6) fails its request with 503 and Retry-After, and the whole pool is renewed at once;
    # DB_POOL_PRE_PING=true tests every connection before use instead, for a round trip per request.
    DB_POOL_TIMEOUT = 10
    DB_POOL_PRE_PING = False
    # Seconds a worker may reuse what it read about a questionnaire on the submission path (its id,
    # settings and newest version). Nothing is stored against a changed questionnaire: the insert
    # itself checks that it is still open with the same settings. A version published meanwhile is
    # the default for submissions that name none only after this delay, in other workers.
    SUBMISSION_TARGET_TTL = 2.0
    # Once a count found too few new responses for a new public snapshot, a worker does not count
    # again for this long (counting a million responses is the cost of the rule, not its point).
    SNAPSHOT_RECHECK_SECONDS = 60
    # A new snapshot is computed while a request waits only up to this many responses (about 7 s on
    # two cores); beyond, `flask survey snapshot --due`, run by a timer, takes it (docs/deployment.md).
    SNAPSHOT_INLINE_MAX_RESPONSES = 50_000
    # Public API and its OpenAPI document.
    API_TITLE = "Citizen survey API"
    API_VERSION = "v1"
    OPENAPI_VERSION = "3.0.3"
    OPENAPI_URL_PREFIX = "/api/v1"
    OPENAPI_JSON_PATH = "openapi.json"
    # Rate limits (promise S15), per client known only by a daily keyed hash of its address.
    # Many respondents can share one address (mobile networks, a community centre): raise the
    # submission limit for events where people answer on shared Wi-Fi.
    RATELIMIT_ENABLED = True
    RATELIMIT_STORAGE_URI = "memory://"  # e.g. redis://127.0.0.1:6379/0 to share counters
    SUBMISSION_RATE_LIMIT = "20 per 10 minutes"  # stored responses per client and questionnaire
    LOGIN_RATE_LIMIT = "10 per 15 minutes"  # failed staff logins per client
    PROXY_FIX_X_FOR = 0  # number of proxies of ours in front (X-Forwarded-For is trusted only then)
    # Public pages: the only cookie is Flask's session cookie holding the form's CSRF token; it has
    # no expiry (a browser-session cookie). Behind HTTPS set SURVEY_SESSION_COOKIE_SECURE=true, which
    # also gives the cookie the __Host- prefix (promise S2).
    SESSION_COOKIE_SECURE = False
    SESSION_COOKIE_SAMESITE = "Strict"
    SESSION_COOKIE_HTTPONLY = True
    WTF_CSRF_TIME_LIMIT = None  # valid for the browser session: slow respondents must not lose answers
    WTF_CSRF_SSL_STRICT = False  # Referer is never sent (Referrer-Policy: no-referrer); Origin is checked


def load_config(app: Flask, test_config: dict[str, Any] | None) -> None:
    """Fill ``app.config`` in precedence order and derive the SQLAlchemy settings."""
    app.config.from_object(Defaults)
    app.config.from_pyfile("config.py", silent=True)
    app.config.from_prefixed_env(prefix="SURVEY")
    if test_config:
        app.config.from_mapping(test_config)

    instance = Path(app.instance_path)
    url = app.config["DATABASE_URL"] or f"sqlite:///{instance / 'survey.sqlite3'}"
    app.config["DATABASE_URL"] = url = normalise_database_url(url)
    app.config["SQLALCHEMY_DATABASE_URI"] = url
    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", engine_options(url, app.config))
    if url.startswith("sqlite:///") and ":memory:" not in url:
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)

    if app.config["SESSION_COOKIE_SECURE"]:
        app.config["SESSION_COOKIE_NAME"] = "__Host-session"

    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = _instance_secret_key(instance)


def normalise_database_url(url: str) -> str:
    """Accept the common ``postgres://`` and ``postgresql://`` forms and use psycopg 3 for them."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url


def engine_options(url: str, config: dict[str, Any]) -> dict[str, Any]:
    # hide_parameters: a database error or SQL logging must never print answers into a log.
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 10}, "hide_parameters": True}
    return {
        "pool_pre_ping": bool(config["DB_POOL_PRE_PING"]),
        "pool_timeout": config["DB_POOL_TIMEOUT"],
        "hide_parameters": True,
    }


def _instance_secret_key(instance: Path) -> str:
    path = instance / "secret_key"
    if path.exists():
        return path.read_text(encoding="ascii").strip()
    instance.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    # Written to a private temporary file, then linked into place: link() fails if another worker
    # won the race, and then both use the winner's key.
    tmp = instance / f".secret_key.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key)
    try:
        os.link(tmp, path)
    except FileExistsError:
        key = path.read_text(encoding="ascii").strip()
    finally:
        tmp.unlink()
    return key
