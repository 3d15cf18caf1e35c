"""Rate limits that never see an IP address (promise S15).

A client is known only by ``HMAC(secret, day + address)``: the key changes every day and cannot be
turned back into an address, and the address itself is never stored, logged or sent to the counter
store. Counters live in memory by default (per process) or in Redis when ``RATELIMIT_STORAGE_URI``
names one, so that every app process shares them. Only what a limit protects is counted: stored
responses (not page views or invalid submissions), failed logins.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time

from flask import Flask, current_app, request
from limits import parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from werkzeug.middleware.proxy_fix import ProxyFix

from survey.errors import RateLimitedError


def init_app(app: Flask) -> None:
    storage = storage_from_string(app.config["RATELIMIT_STORAGE_URI"])
    app.extensions["survey"]["ratelimit"] = MovingWindowRateLimiter(storage)
    hops = int(app.config["PROXY_FIX_X_FOR"])
    if hops:  # only behind a proxy that we run: otherwise X-Forwarded-For is the client's to forge
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops)  # type: ignore[method-assign]


def client_key() -> str:
    day = time.strftime("%Y-%m-%d", time.gmtime())
    secret = current_app.config["SECRET_KEY"].encode()
    message = f"{day}|{request.remote_addr or '-'}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()[:32]


def _limiter() -> MovingWindowRateLimiter | None:
    if not current_app.config["RATELIMIT_ENABLED"]:
        return None
    return current_app.extensions["survey"]["ratelimit"]


def check(scope: str, setting: str) -> None:
    """Raise 429 (with Retry-After) if this client used up the limit named by config ``setting``."""
    limiter = _limiter()
    if limiter is None:
        return
    limit = parse(current_app.config[setting])
    if not limiter.test(limit, scope, client_key()):
        reset = limiter.get_window_stats(limit, scope, client_key()).reset_time
        raise RateLimitedError(max(1, math.ceil(reset - time.time())))


def spend(scope: str, setting: str) -> None:
    """Count one use against the limit."""
    limiter = _limiter()
    if limiter is not None:
        limiter.hit(parse(current_app.config[setting]), scope, client_key())
