"""Accounts: passwords, login lockout without IPs, tokens, sessions, the CLI for the first admin."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from survey.accounts import services
from survey.accounts.models import ApiToken, AuditEvent, User
from survey.db import db, unit_of_work
from survey.errors import LoginFailedError, LoginLockedError, UserExistsError, UserInvalidError
from tests.staff import PASSWORD, make_staff


def test_passwords_are_argon2id_hashes(app):
    user = services.create_user("Ana@Example.org ", "Ana", "editor", PASSWORD)
    assert user.email == "ana@example.org"
    assert user.password_hash.startswith("$argon2id$") and PASSWORD not in user.password_hash
    assert services.authenticate("ANA@example.org", PASSWORD).id == user.id


@pytest.mark.parametrize(
    ("email", "role", "password", "field"),
    [
        ("no-at-sign", "editor", PASSWORD, "email"),
        ("a@b.org", "owner", PASSWORD, "role"),
        ("a@b.org", "editor", "short", "password"),
        ("a@b.org", "editor", "aaaaaaaaaaaaaaaa", "password"),
        ("verylongname@b.org", "editor", "verylongname1234", "password"),
    ],
)
def test_invalid_users_are_refused_with_the_field(app, email, role, password, field):
    with pytest.raises(UserInvalidError) as caught:
        services.create_user(email, "X", role, password)
    assert field in caught.value.errors
    assert db.session.scalar(select(User).where(User.email == email)) is None


def test_duplicate_email(app):
    services.create_user("a@b.org", "A", "editor", PASSWORD)
    with pytest.raises(UserExistsError):
        services.create_user("A@b.org", "A2", "admin", PASSWORD)


def test_unknown_user_and_wrong_password_fail_alike(app):
    services.create_user("a@b.org", "A", "editor", PASSWORD)
    with pytest.raises(LoginFailedError) as unknown:
        services.authenticate("nobody@b.org", PASSWORD)
    with pytest.raises(LoginFailedError) as wrong:
        services.authenticate("a@b.org", "wrong password!!")
    assert (unknown.value.status, unknown.value.detail) == (wrong.value.status, wrong.value.detail)


def test_five_failures_lock_the_account_for_fifteen_minutes(app):
    user = services.create_user("a@b.org", "A", "editor", PASSWORD)
    for _ in range(5):
        with pytest.raises(LoginFailedError):
            services.authenticate("a@b.org", "not the password")
    with pytest.raises(LoginLockedError) as locked:
        services.authenticate("a@b.org", PASSWORD)  # even the right password waits
    assert 800 < locked.value.retry_after <= 901
    with unit_of_work():
        user.locked_until = services.now() - dt.timedelta(seconds=1)
    assert services.authenticate("a@b.org", PASSWORD).id == user.id
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "user.locked")) is not None


def test_tokens_are_hashed_expire_and_can_be_revoked(app):
    user = services.create_user("a@b.org", "A", "analyst", PASSWORD)
    token, secret = services.create_token(user, "laptop", days=1)
    assert secret.startswith("sv_") and len(secret) > 40
    assert token.token_hash != secret and secret not in token.token_hash
    assert services.user_for_token(secret).id == user.id
    assert token.last_used_on == services.now().date()
    assert services.user_for_token(secret + "x") is None
    assert services.user_for_token("Bearer nonsense") is None
    with unit_of_work():
        token.expires_at = services.now() - dt.timedelta(seconds=1)
    assert services.user_for_token(secret) is None
    with unit_of_work():
        token.expires_at = services.now() + dt.timedelta(days=1)
    services.revoke_token(token, user)
    assert services.user_for_token(secret) is None


def test_deactivated_user_loses_token_access(app):
    people = make_staff()
    analyst = people["analyst"]
    services.update_user(analyst.user, people["admin"].user, active=False)
    assert services.user_for_token(analyst.token) is None


def test_cli_creates_the_first_admin_and_a_token(app, runner):
    result = runner.invoke(
        args=["survey", "create-user", "boss@example.org", "--name", "Boss", "--role", "admin"],
        env={"SURVEY_PASSWORD": PASSWORD},
    )
    assert result.exit_code == 0, result.output
    token = runner.invoke(args=["survey", "create-token", "boss@example.org", "--days", "7"])
    assert token.exit_code == 0
    secret = token.stdout.strip()
    assert services.user_for_token(secret).role == "admin"
    stored = db.session.scalar(select(ApiToken))
    assert secret not in (stored.token_hash, stored.prefix) and stored.prefix == secret[:10]
    bad = runner.invoke(
        args=["survey", "create-user", "x@example.org", "--name", "X"], env={"SURVEY_PASSWORD": "short"}
    )
    assert bad.exit_code != 0 and "password" in bad.output
