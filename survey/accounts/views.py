"""Staff pages for accounts (``/admin``): log in and out, users (admins), your API tokens, the audit log.

Server-rendered pages in the look of the public ones. Every view is guarded by
:func:`survey.accounts.auth.require` (anonymous visitors are sent to the login page, a role that may
not gets a 403 page), every form carries the CSRF token, and every staff page is ``no-store``.
Views parse the form, call one service and render; the services commit and audit.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, flash, redirect, render_template, request, stream_with_context, url_for
from sqlalchemy import func, select
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response as BaseResponse

from survey import ratelimit
from survey.accounts import services
from survey.accounts.auth import finish_session, require, staff, start_session
from survey.accounts.models import ROLES, ApiToken, AuditEvent, User
from survey.db import db
from survey.errors import (
    LoginFailedError,
    LoginLockedError,
    PermissionDeniedError,
    RateLimitedError,
    UserExistsError,
    UserInvalidError,
)
from survey.exports.cells import neutralise
from survey.i18n import gettext as _

bp = Blueprint("admin", __name__, url_prefix="/admin")

AUDIT_PAGE_SIZE = 50
LOGIN_SCOPE = "staff-login"
LIST_PAGE = "admin_questionnaire_pages.index"
MAX_ID = "2147483647"


@bp.after_app_request
def _staff_pages_are_not_stored(response: Response) -> Response:
    """Staff pages show names, e-mail addresses and secrets: no browser or proxy may keep a copy (S1)."""
    if request.path == "/admin" or request.path.startswith("/admin/"):
        response.headers["Cache-Control"] = "no-store"
    return response


@bp.app_context_processor
def _staff_context() -> dict[str, Any]:
    """What the staff layout needs: who is logged in, as the view's guard found it.

    Read from the guard's per-request cache, never looked up here: an error page rendered because the
    database is unreachable must not query it again.
    """
    if not request.path.startswith("/admin"):
        return {}
    return {"staff_user": request.environ.get("survey.staff"), "roles": ROLES}


# -- logging in and out -------------------------------------------------------------------------


def safe_next(value: str | None) -> str | None:
    """``value`` if it is a path on this site (one leading ``/``), else None: never an open redirect.

    ``//evil.example`` and ``/\\evil.example`` are taken by browsers as another host, and
    ``https:evil.example`` as a URL; control characters and spaces may be stripped by a browser
    into one of those.
    """
    if not value or len(value) > 2000 or not value.startswith("/") or value.startswith("//"):
        return None
    if "\\" in value or any(ord(char) <= 0x20 or ord(char) == 0x7F for char in value):
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return None
    return value


@bp.route("/login", methods=["GET", "POST"])
def login() -> str | tuple[str, int, dict[str, str]] | BaseResponse:
    """The login form (e-mail and password); success starts a fresh session and follows ``next``."""
    target = safe_next(request.values.get("next"))
    if request.method == "GET":
        if staff() is not None:
            return redirect(target or url_for(LIST_PAGE), code=303)
        return _login_page(target, "")
    email = request.form.get("email", "")[:254]
    password = request.form.get("password", "")
    try:
        ratelimit.check(LOGIN_SCOPE, "LOGIN_RATE_LIMIT")  # failures per client (hashed address), S5/S15
        user = services.authenticate(email, password)
    except (LoginLockedError, RateLimitedError) as error:
        if isinstance(error, LoginLockedError):
            ratelimit.spend(LOGIN_SCOPE, "LOGIN_RATE_LIMIT")
        minutes = max(1, math.ceil(error.retry_after / 60))
        message = _("Too many failed logins. Try again in %(minutes)d minutes.", minutes=minutes)
        return _login_page(target, email, message), 429, {"Retry-After": str(error.retry_after)}
    except LoginFailedError:
        ratelimit.spend(LOGIN_SCOPE, "LOGIN_RATE_LIMIT")
        # The same words and status for an unknown e-mail and a wrong password (no enumeration).
        return _login_page(target, email, _("Wrong e-mail address or password.")), 422, {}
    start_session(user)
    return redirect(target or url_for(LIST_PAGE), code=303)


def _login_page(target: str | None, email: str, error: str | None = None) -> str:
    return render_template("admin/login.html", lang="en", languages=[], next=target, email=email, error=error)


@bp.post("/logout")
@require("questionnaires.read")
def logout() -> BaseResponse:
    """End the session on the server too: the session cookie stops working everywhere."""
    finish_session(staff())  # type: ignore[arg-type]
    flash(_("You are logged out."), "info")
    return redirect(url_for("admin.login"), code=303)


@bp.get("/")
@require("questionnaires.read")
def home() -> BaseResponse:
    """The staff start page is the list of questionnaires."""
    return redirect(url_for(LIST_PAGE), code=303)


# -- users --------------------------------------------------------------------------------------


@bp.get("/users")
@require("users.manage")
def users() -> str:
    """Every staff user, with forms to add one and to change a role or deactivate (admins only)."""
    return _users_page()


def _users_page(
    errors: dict[str, list[str]] | None = None, form: dict[str, str] | None = None, top_error: str | None = None
) -> str:
    people = db.session.scalars(select(User).order_by(User.email)).all()
    return render_template(
        "admin/users.html",
        lang="en",
        languages=[],
        people=people,
        errors=errors or {},
        form=form or {},
        top_error=top_error,
    )


@bp.post("/users")
@require("users.manage")
def create_user() -> str | tuple[str, int] | BaseResponse:
    """Add a staff user with a first password (they should change it)."""
    form = {name: request.form.get(name, "") for name in ("email", "name", "role")}
    try:
        user = services.create_user(
            form["email"], form["name"], form["role"], request.form.get("password", ""), actor=staff()
        )
    except UserInvalidError as error:
        return _users_page(_messages(error), form), 422
    except UserExistsError:
        return _users_page({"email": [_("A user with this e-mail address exists.")]}, form), 409
    flash(_("Added %(email)s.", email=user.email), "info")
    return redirect(url_for("admin.users"), code=303)


@bp.post(f"/users/<int(max={MAX_ID}):user_id>")
@require("users.manage")
def change_user(user_id: int) -> str | tuple[str, int] | BaseResponse:
    """Change a user's role, or deactivate or reactivate them; their sessions end at once."""
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound()
    role = request.form.get("role") or None
    active = {"yes": True, "no": False}.get(request.form.get("active", ""))
    if role is not None and role not in ROLES:
        return _users_page(top_error=_("Choose one of the roles.")), 422
    demoting = user.role == "admin" and user.active and ((role or "admin") != "admin" or active is False)
    if demoting and services.count_admins() <= 1:
        raise PermissionDeniedError("The last active admin cannot be demoted or deactivated.")
    services.update_user(user, staff(), role=role, active=active)  # type: ignore[arg-type]
    flash(_("Changed %(email)s.", email=user.email), "info")
    return redirect(url_for("admin.users"), code=303)


def _messages(error: UserInvalidError) -> dict[str, list[str]]:
    found = error.errors or {}
    return {field: list(messages) for field, messages in found.items()} or {"form": [error.detail]}


# -- API tokens ---------------------------------------------------------------------------------


@bp.get("/tokens")
@require("questionnaires.read")
def tokens() -> str:
    """Your API tokens (for scripts using /api/v1/admin), with a form to make one."""
    return _tokens_page()


def _tokens_page(errors: dict[str, list[str]] | None = None, form: dict[str, str] | None = None) -> str:
    user = staff()
    mine = db.session.scalars(select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id.desc())).all()  # type: ignore[union-attr]
    return render_template(
        "admin/tokens.html",
        lang="en",
        languages=[],
        tokens=mine,
        errors=errors or {},
        form=form or {},
        days_default=services.TOKEN_DAYS_DEFAULT,
        days_max=services.TOKEN_DAYS_MAX,
        now=services.now(),
    )


@bp.post("/tokens")
@require("questionnaires.read")
def create_token() -> str | tuple[str, int]:
    """Make a token; its secret is on this one page and never shown again."""
    form = {"name": request.form.get("name", ""), "days": request.form.get("days", "")}
    days = services.TOKEN_DAYS_DEFAULT
    if form["days"].strip():
        try:
            days = int(form["days"].strip())
        except ValueError:
            return _tokens_page({"days": [_("Give a whole number of days.")]}, form), 422
    try:
        token, secret = services.create_token(staff(), form["name"], days)  # type: ignore[arg-type]
    except UserInvalidError as error:
        return _tokens_page(_messages(error), form), 422
    return render_template("admin/token_created.html", lang="en", languages=[], token=token, secret=secret)


@bp.post(f"/tokens/<int(max={MAX_ID}):token_id>/revoke")
@require("questionnaires.read")
def revoke_token(token_id: int) -> BaseResponse:
    """Revoke one of your tokens; someone else's is a 404 (no hint that it exists)."""
    user = staff()
    token = db.session.get(ApiToken, token_id)
    if token is None or token.user_id != user.id:  # type: ignore[union-attr]
        raise NotFound()
    services.revoke_token(token, user)  # type: ignore[arg-type]
    flash(_("Revoked the token %(name)s.", name=token.name), "info")
    return redirect(url_for("admin.tokens"), code=303)


# -- the audit log ------------------------------------------------------------------------------


@bp.get("/audit")
@require("audit.read")
def audit() -> str:
    """The audit log of staff actions, newest first, a page at a time (admins only)."""
    total = db.session.scalar(select(func.count()).select_from(AuditEvent)) or 0
    pages = max(1, math.ceil(total / AUDIT_PAGE_SIZE))
    page = min(max(request.args.get("page", 1, type=int) or 1, 1), pages)
    events = db.session.execute(
        select(AuditEvent, User.name)
        .outerjoin(User, User.id == AuditEvent.actor_id)
        .order_by(AuditEvent.id.desc())
        .limit(AUDIT_PAGE_SIZE)
        .offset((page - 1) * AUDIT_PAGE_SIZE)
    ).all()
    return render_template(
        "admin/audit.html", lang="en", languages=[], events=events, page=page, pages=pages, total=total
    )


AUDIT_COLUMNS = ("id", "at", "actor", "actor_name", "action", "object_type", "object_id", "details")


@bp.get("/audit.csv")
@require("audit.read")
def audit_csv() -> Response:
    """The whole audit log as CSV, newest first; every text cell is formula-safe (S11), every field quoted."""
    rows = db.session.execute(
        select(AuditEvent, User.name)
        .outerjoin(User, User.id == AuditEvent.actor_id)
        .order_by(AuditEvent.id.desc())
        .execution_options(yield_per=500)
    )

    def generate() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
        writer.writerow(AUDIT_COLUMNS)
        for event, actor_name in rows:
            writer.writerow(_audit_row(event, actor_name))
            if buffer.tell() > 64 * 1024:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    return Response(
        stream_with_context(generate()),
        mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=audit.csv"},
    )


def _audit_row(event: AuditEvent, actor_name: str | None) -> list[str | int]:
    details = json.dumps(event.details or {}, ensure_ascii=False, sort_keys=True, default=str)
    texts = [
        event.at.isoformat(),
        event.actor,
        actor_name or "",
        event.action,
        event.object_type,
        event.object_id,
        details,
    ]
    return [event.id, *(neutralise(text) for text in texts)]
