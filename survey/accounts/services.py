"""Account services: users, passwords, login with lockout, API tokens, and the audit log.

Passwords are hashed with argon2id; API tokens are 256-bit random strings of which only the SHA-256
is stored (a token is shown once). Failed logins are counted per account, never per IP address.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from sqlalchemy import func, select

from survey.accounts.models import ROLES, ApiToken, AuditEvent, User
from survey.db import db, unit_of_work
from survey.errors import LoginFailedError, LoginLockedError, UserExistsError, UserInvalidError
from survey.questionnaires.fields import SURROGATE_PROBLEM, text_problem

PASSWORD_MIN, PASSWORD_MAX = 12, 256
MAX_FAILURES, LOCKOUT = 5, dt.timedelta(minutes=15)
TOKEN_PREFIX = "sv_"  # noqa: S105 - a public marker of our tokens, not a secret
TOKEN_DAYS_DEFAULT, TOKEN_DAYS_MAX = 90, 365


def _hasher() -> PasswordHasher:
    """argon2id with the configured cost (the library's recommended defaults unless configured)."""
    return PasswordHasher(**current_app.config.get("PASSWORD_HASH_COST", {}))


def _dummy_hash() -> str:
    """A hash to verify against when the e-mail is unknown, so both failures cost the same time."""
    cache = current_app.extensions["survey"]
    if "dummy_hash" not in cache:
        cache["dummy_hash"] = _hasher().hash(secrets.token_hex(16))
    return cache["dummy_hash"]


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _aware(moment: dt.datetime | None) -> dt.datetime | None:
    """SQLite gives back naive datetimes; every stored moment is UTC."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment


def password_problems(password: str, email: str = "") -> list[str]:
    problems = []
    if text_problem(password) == SURROGATE_PROBLEM:  # not text: it could not even be hashed
        problems.append("Contains a character that is not allowed.")
        return problems
    if len(password) < PASSWORD_MIN:
        problems.append(f"Use at least {PASSWORD_MIN} characters.")
    if len(password) > PASSWORD_MAX:
        problems.append(f"Use at most {PASSWORD_MAX} characters.")
    local_part = email.split("@")[0].lower()
    if len(set(password)) < 4 or (len(local_part) >= 4 and local_part in password.lower()):
        problems.append("Choose a password that is harder to guess.")
    return problems


def create_user(email: str, name: str, role: str, password: str, actor: User | None = None) -> User:
    email = email.strip().lower()
    errors: dict[str, list[str]] = {}
    if "@" not in email or len(email) > 254 or any(c.isspace() for c in email) or text_problem(email):
        errors["email"] = ["Not a valid e-mail address."]
    if not name.strip() or len(name) > 100:
        errors["name"] = ["Give a name of 1 to 100 characters."]
    elif text_problem(name):
        errors["name"] = ["Contains a character that is not allowed."]
    if role not in ROLES:
        errors["role"] = [f"Must be one of: {', '.join(ROLES)}."]
    if problems := password_problems(password, email):
        errors["password"] = problems
    if errors:
        raise UserInvalidError("The user details are invalid.", errors)
    with unit_of_work():
        if db.session.scalar(select(User.id).where(User.email == email)) is not None:
            raise UserExistsError(f"A user with the e-mail address {email} exists.")
        user = User(
            email=email,
            name=name.strip(),
            role=role,
            password_hash=_hasher().hash(password),
            active=True,
            failed_logins=0,
            session_version=0,
            created_at=now(),
        )
        db.session.add(user)
        db.session.flush()
        record(actor, "user.create", "user", user.id, role=role)
    return user


def update_user(user: User, actor: User, role: str | None = None, active: bool | None = None) -> User:
    with unit_of_work():
        changes: dict[str, Any] = {}
        if role is not None and role != user.role:
            if role not in ROLES:
                raise UserInvalidError(
                    "The user details are invalid.", {"role": [f"Must be one of: {', '.join(ROLES)}."]}
                )
            user.role = changes["role"] = role
        if active is not None and active != user.active:
            user.active = changes["active"] = active
        if changes:
            user.session_version += 1  # a changed role or a deactivation takes effect at once
            record(actor, "user.update", "user", user.id, **changes)
    return user


def set_password(user: User, password: str, actor: User | None) -> None:
    if problems := password_problems(password, user.email):
        raise UserInvalidError("The password is not acceptable.", {"password": problems})
    with unit_of_work():
        user.password_hash = _hasher().hash(password)
        user.session_version += 1
        record(actor, "user.password", "user", user.id)


def authenticate(email: str, password: str) -> User:
    """The user with these credentials; failures are counted and lock the account for a while."""
    with unit_of_work():
        user = None
        if not text_problem(email):  # no account can have such an address (and the database may refuse it)
            user = db.session.scalar(select(User).where(User.email == email.strip().lower()))
        if user is None or not user.active:
            _verify(_dummy_hash(), password)
            raise LoginFailedError()
        locked_until = _aware(user.locked_until)
        if locked_until and locked_until > now():
            raise LoginLockedError(int((locked_until - now()).total_seconds()) + 1)
        if not _verify(user.password_hash, password):
            user.failed_logins += 1
            if user.failed_logins >= MAX_FAILURES:
                user.locked_until = now() + LOCKOUT
                user.failed_logins = 0
                record(None, "user.locked", "user", user.id)
            db.session.flush()
            failed = LoginFailedError()
        else:
            user.failed_logins = 0
            user.locked_until = None
            if _hasher().check_needs_rehash(user.password_hash):
                user.password_hash = _hasher().hash(password)
            record(user, "user.login", "user", user.id)
            return user
    raise failed  # after the commit, so the failure count is kept


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def end_sessions(user: User) -> None:
    """Server-side logout: every session cookie issued to the user stops working."""
    with unit_of_work():
        user.session_version += 1
        record(user, "user.logout", "user", user.id)


def create_token(
    user: User, name: str, days: int = TOKEN_DAYS_DEFAULT, actor: User | None = None
) -> tuple[ApiToken, str]:
    """A new API token for ``user``; the returned secret is shown once and never stored."""
    if not name.strip() or len(name) > 100 or text_problem(name):
        raise UserInvalidError("The token details are invalid.", {"name": ["Give a name of 1 to 100 characters."]})
    if not 1 <= days <= TOKEN_DAYS_MAX:
        raise UserInvalidError("The token details are invalid.", {"days": [f"Between 1 and {TOKEN_DAYS_MAX}."]})
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with unit_of_work():
        token = ApiToken(
            user=user,
            name=name.strip(),
            token_hash=_token_hash(secret),
            prefix=secret[:10],
            created_at=now(),
            expires_at=now() + dt.timedelta(days=days),
        )
        db.session.add(token)
        db.session.flush()
        record(actor or user, "token.create", "api_token", token.id, user=user.id, days=days)
    return token, secret


def user_for_token(secret: str) -> User | None:
    """The active user a valid, unexpired, unrevoked token belongs to."""
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 100:
        return None
    token = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == _token_hash(secret)))
    if token is None or token.revoked_at is not None or _aware(token.expires_at) <= now() or not token.user.active:
        return None
    today = now().date()
    if token.last_used_on != today:  # day precision: enough to spot unused tokens
        with unit_of_work():
            token.last_used_on = today
    return token.user


def revoke_token(token: ApiToken, actor: User) -> None:
    with unit_of_work():
        if token.revoked_at is None:
            token.revoked_at = now()
            record(actor, "token.revoke", "api_token", token.id)


def _token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def record(actor: User | None, action: str, object_type: str, object_id: Any, **details: Any) -> AuditEvent:
    """Add an audit event to the current unit of work (it commits with the action it records)."""
    event = AuditEvent(
        at=now(),
        actor_id=actor.id if actor else None,
        actor=actor.email if actor else "system",
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        details=details,
    )
    db.session.add(event)
    return event


def count_admins() -> int:
    return db.session.scalar(select(func.count()).select_from(User).where(User.role == "admin", User.active)) or 0
