"""Logging in and out of the staff pages: session rotation, server-side logout, one failure message for
unknown e-mail and wrong password, lockout, safe ``next``, CSRF and no-store (promises S1, S3–S5)."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from survey.accounts.models import AuditEvent
from survey.db import db
from tests.admin.pages import csrf_of, csrf_token, log_in, login_redirect_target, submit_login
from tests.staff import PASSWORD, make_staff

LIST = "/admin/questionnaires/"


@pytest.fixture
def people(app):
    return make_staff()


def session_cookie(client) -> str:
    cookie = client.get_cookie("session")
    assert cookie is not None
    return cookie.value


def test_login_starts_a_new_session_and_logout_ends_it_on_the_server(client, people):
    editor = people["editor"].user
    assert login_redirect_target(client.get(LIST)) == LIST
    login_page = client.get("/admin/login")
    anonymous_cookie, anonymous_token = session_cookie(client), csrf_of(login_page)

    response = submit_login(client, editor.email)
    assert response.status_code == 303 and response.headers["Location"] == LIST
    logged_in_cookie = session_cookie(client)
    assert logged_in_cookie != anonymous_cookie
    assert client.get(LIST).status_code == 200
    # Nothing of the anonymous session is carried over: its CSRF token is no longer accepted.
    stale = client.post("/admin/logout", data={"csrf_token": anonymous_token})
    assert stale.status_code == 400
    assert client.get(LIST).status_code == 200

    version_before = editor.session_version
    token = csrf_token(client, LIST)
    logout = client.post("/admin/logout", data={"csrf_token": token})
    assert logout.status_code == 303 and logout.headers["Location"] == "/admin/login"
    assert login_redirect_target(client.get(LIST)) == LIST
    db.session.refresh(editor)
    assert editor.session_version == version_before + 1

    # The cookie from before the logout, replayed (a copy kept by an attacker), no longer works.
    client.set_cookie("session", logged_in_cookie)
    assert login_redirect_target(client.get(LIST)) == LIST
    assert db.session.scalar(select(AuditEvent.action).order_by(AuditEvent.id.desc()).limit(1)) == "user.logout"


def test_logout_is_post_only(client, people):
    log_in(client, people["analyst"].user)
    response = client.get("/admin/logout")
    assert response.status_code == 405
    assert "POST" in response.headers["Allow"]
    assert client.get(LIST).status_code == 200  # still logged in


def _without_token(page: str) -> str:
    return re.sub(r'name="csrf_token" value="[^"]*"', "", page)


def test_unknown_email_and_wrong_password_get_the_same_page(client, people):
    known = submit_login(client, "editor@example.org", "not the password at all")
    unknown = submit_login(client, "nobody@example.org", "not the password at all")
    assert known.status_code == unknown.status_code == 422
    known_page = _without_token(known.get_data(as_text=True)).replace("editor@example.org", "EMAIL")
    unknown_page = _without_token(unknown.get_data(as_text=True)).replace("nobody@example.org", "EMAIL")
    assert known_page == unknown_page
    assert "Wrong e-mail address or password." in known_page
    assert login_redirect_target(client.get(LIST)) == LIST  # neither logged anyone in


def test_five_failures_lock_the_account_with_a_429(client, people):
    for _attempt in range(5):
        assert submit_login(client, "analyst@example.org", "wrong password!").status_code == 422
    locked = submit_login(client, "analyst@example.org", PASSWORD)  # even the right password now
    assert locked.status_code == 429
    assert 0 < int(locked.headers["Retry-After"]) <= 15 * 60 + 1
    assert "Too many failed logins" in locked.get_data(as_text=True)
    assert login_redirect_target(client.get(LIST)) == LIST
    assert submit_login(client, "editor@example.org", PASSWORD).status_code == 303  # others are not locked


def test_failures_from_one_client_are_limited_across_accounts(app, client, people, monkeypatch):
    monkeypatch.setitem(app.config, "RATELIMIT_ENABLED", True)
    monkeypatch.setitem(app.config, "LOGIN_RATE_LIMIT", "3 per 15 minutes")
    try:
        for attempt in range(3):
            email = f"guess{attempt}@example.org"
            assert submit_login(client, email, "wrong password!").status_code == 422
        limited = submit_login(client, "admin@example.org", PASSWORD)
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    finally:
        app.extensions["survey"]["ratelimit"].storage.reset()


@pytest.mark.parametrize(
    "evil",
    ["//evil.example", "https:evil.example", "https://evil.example/admin", "/\\evil.example", "/\t/evil.example", ""],
)
def test_next_is_followed_only_to_a_local_path(client, people, evil):
    response = submit_login(client, people["analyst"].user.email, next_url=evil)
    assert response.status_code == 303
    assert response.headers["Location"] == LIST


def test_next_to_a_local_page_is_followed(client, people):
    target = "/admin/questionnaires/dialogue_2022?tab=versions"
    assert login_redirect_target(client.get(target)) == target
    response = submit_login(client, people["analyst"].user.email, next_url=target)
    assert response.headers["Location"] == target


def test_a_post_without_the_csrf_token_is_refused(client, people):
    log_in(client, people["editor"].user)
    response = client.post("/admin/questionnaires/dialogue_2022/close", data={})
    assert response.status_code == 400
    assert "reload the page" in response.get_data(as_text=True)
    wrong = client.post("/admin/questionnaires/dialogue_2022/close", data={"csrf_token": "forged"})
    assert wrong.status_code == 400
    assert 'class="status status-open"' in client.get("/admin/questionnaires/dialogue_2022").get_data(as_text=True)
    assert not db.session.scalars(select(AuditEvent).where(AuditEvent.action == "questionnaire.close")).all()


def test_a_post_from_another_site_is_refused(client, people):
    token = log_in(client, people["editor"].user)
    response = client.post(
        "/admin/questionnaires/dialogue_2022/close",
        data={"csrf_token": token},
        headers={"Origin": "https://evil.example"},
    )
    assert response.status_code == 403


@pytest.mark.parametrize(
    "path", ["/admin/login", LIST, "/admin/questionnaires/nope", "/admin/audit", "/admin/tokens", "/admin/logout"]
)
def test_staff_pages_are_never_stored(client, people, path):
    log_in(client, people["editor"].user)
    response = client.get(path)  # 200, 404, a 403 for the audit log and a 405 for logout
    assert response.status_code in (200, 303, 403, 404, 405)
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Security-Policy"].startswith("default-src 'self'")
