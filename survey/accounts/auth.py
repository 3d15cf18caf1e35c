"""Who is asking, and may they: bearer tokens for the admin API, login sessions for admin pages.

``require(permission)`` guards a view. The JSON API answers 401 (no or bad token) or 403 (role);
pages send an anonymous visitor to the login page and answer 403 for a role that may not.
Sessions expire after 30 idle minutes and 12 hours in all, and a logout ends them on the server.
The JSON API has no sessions at all: it neither reads the session cookie nor sets one.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, Request, redirect, request, session, url_for
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_login import LoginManager, current_user, login_user, logout_user
from sqlalchemy import select

from survey.accounts.models import User
from survey.accounts.services import end_sessions, now, user_for_token
from survey.api import API_PREFIX
from survey.db import db
from survey.errors import AuthenticationRequiredError, PermissionDeniedError

IDLE_TIMEOUT = dt.timedelta(minutes=30)
ABSOLUTE_TIMEOUT = dt.timedelta(hours=12)

login_manager = LoginManager()
login_manager.session_protection = None  # its protection hashes the IP address into the cookie

F = TypeVar("F", bound=Callable[..., Any])


@login_manager.user_loader
def _load_user(user_id: str) -> User | None:
    """Session ids are ``id:session_version``: a bumped version ends every older session."""
    try:
        key, version = (int(part) for part in user_id.split(":"))
    except ValueError:
        return None
    user = db.session.get(User, key)
    if user is None or not user.active or user.session_version != version:
        return None
    return user


def start_session(user: User) -> None:
    """Log in with a fresh session (nothing from the anonymous session is carried over)."""
    session.clear()
    login_user(user)
    session["login_at"] = session["seen_at"] = now().timestamp()


def finish_session(user: User) -> None:
    end_sessions(user)
    logout_user()
    session.clear()


def staff() -> User | None:
    """The staff member behind this request: a bearer token on the API, the session on pages."""
    if "survey.staff" in request.environ:  # once per request (g would outlive it in tests)
        return request.environ["survey.staff"]
    user: User | None = None
    if request.path.startswith(API_PREFIX):
        header = request.headers.get("Authorization", "")
        scheme, _sep, secret = header.partition(" ")
        if scheme.lower() == "bearer" and secret:
            user = user_for_token(secret.strip())
    elif current_user.is_authenticated and _session_is_fresh():
        user = current_user._get_current_object()  # type: ignore[attr-defined]
    request.environ["survey.staff"] = user
    return user


def _session_is_fresh() -> bool:
    moment = now().timestamp()
    login_at, seen_at = session.get("login_at", 0), session.get("seen_at", 0)
    if moment - seen_at > IDLE_TIMEOUT.total_seconds() or moment - login_at > ABSOLUTE_TIMEOUT.total_seconds():
        logout_user()
        session.clear()
        return False
    session["seen_at"] = moment
    return True


def require(permission: str) -> Callable[[F], F]:
    def decorate(view: F) -> F:
        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            user = staff()
            if user is None:
                if request.path.startswith(API_PREFIX):
                    raise AuthenticationRequiredError("Send an API token: Authorization: Bearer <token>.")
                return redirect(
                    url_for("admin.login", next=request.full_path if request.query_string else request.path)
                )
            if not user.can(permission):
                raise PermissionDeniedError(f"The {user.role} role does not allow this.")
            return view(*args, **kwargs)

        return guarded  # type: ignore[return-value]

    return decorate


def user_by_email(email: str) -> User | None:
    return db.session.scalar(select(User).where(User.email == email.strip().lower()))


class PageSessions(SecureCookieSessionInterface):
    """Cookie sessions for pages only. An API request gets Flask's null session: a cookie a browser
    sends along carries no authority there (bearer tokens do), and a viral survey's submissions do
    not pay for unsigning and re-signing a cookie they never use."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if request.path.startswith(API_PREFIX):
            return self.make_null_session(app)
        return super().open_session(app, request)


def init_app(app: Flask) -> None:
    app.session_interface = PageSessions()
    login_manager.init_app(app)
