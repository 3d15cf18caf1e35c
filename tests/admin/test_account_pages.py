"""The account staff pages: users (admins), your API tokens, and the audit log with its formula-safe CSV."""

from __future__ import annotations

import csv
import io
import re

import pytest
from sqlalchemy import select

from survey.accounts.models import ApiToken, AuditEvent, User
from survey.accounts.services import record
from survey.db import db, unit_of_work
from tests.admin.pages import log_in, login_redirect_target, submit_login
from tests.staff import PASSWORD, make_staff

WEAK_PASSWORD = "short"


@pytest.fixture
def people(app):
    return make_staff()


def post(client, url, token, **data):
    return client.post(url, data={"csrf_token": token, **data})


def fresh(user: User) -> User:
    db.session.expire_all()
    return db.session.get(User, user.id)


def test_an_admin_adds_a_user_changes_the_role_and_deactivates_them(client, other_browser, people):
    token = log_in(client, people["admin"].user)
    weak = post(
        client, "/admin/users", token, email="new@example.org", name="New", role="analyst", password=WEAK_PASSWORD
    )
    assert weak.status_code == 422 and "Use at least 12 characters." in weak.get_data(as_text=True)
    taken = post(client, "/admin/users", token, email="EDITOR@example.org", name="E", role="analyst", password=PASSWORD)
    assert taken.status_code == 409
    made = post(client, "/admin/users", token, email="new@example.org", name="New", role="analyst", password=PASSWORD)
    assert made.status_code == 303
    new = db.session.scalar(select(User).where(User.email == "new@example.org"))
    assert (new.role, new.active) == ("analyst", True)
    assert "new@example.org" in client.get("/admin/users").get_data(as_text=True)

    assert post(client, f"/admin/users/{new.id}", token, role="superuser").status_code == 422
    assert post(client, f"/admin/users/{new.id}", token, role="editor").status_code == 303
    assert fresh(new).role == "editor"
    assert post(client, f"/admin/users/{new.id}", token, active="no").status_code == 303
    assert fresh(new).active is False
    assert submit_login(other_browser, "new@example.org").status_code == 422  # deactivated: cannot log in


def test_a_role_change_ends_the_users_sessions_at_once(client, other_browser, people):
    log_in(other_browser, people["editor"].user)
    assert other_browser.get("/admin/questionnaires/").status_code == 200
    token = log_in(client, people["admin"].user)
    assert post(client, f"/admin/users/{people['editor'].user.id}", token, role="analyst").status_code == 303
    assert login_redirect_target(other_browser.get("/admin/questionnaires/")) == "/admin/questionnaires/"


def test_the_last_admin_cannot_be_demoted_or_deactivated(client, people):
    admin = people["admin"].user
    token = log_in(client, admin)
    assert post(client, f"/admin/users/{admin.id}", token, role="editor").status_code == 403
    assert post(client, f"/admin/users/{admin.id}", token, active="no").status_code == 403
    assert (fresh(admin).role, fresh(admin).active) == ("admin", True)


def test_a_token_secret_is_shown_once_works_on_the_api_and_can_be_revoked(client, people):
    analyst = people["analyst"].user
    token = log_in(client, analyst)
    assert post(client, "/admin/tokens", token, name="", days="5").status_code == 422
    assert post(client, "/admin/tokens", token, name="x", days="400").status_code == 422
    assert post(client, "/admin/tokens", token, name="x", days="ten").status_code == 422
    made = post(client, "/admin/tokens", token, name="nightly export", days="30")
    assert made.status_code == 200 and made.headers["Cache-Control"] == "no-store"
    secret = re.search(r'value="(sv_[^"]+)"', made.get_data(as_text=True)).group(1)
    listing = client.get("/admin/tokens").get_data(as_text=True)
    assert "nightly export" in listing and secret not in listing
    me = client.get("/api/v1/admin/me", headers={"Authorization": f"Bearer {secret}"})
    assert me.status_code == 200 and me.json["email"] == analyst.email

    created = db.session.scalar(select(ApiToken).where(ApiToken.name == "nightly export"))
    someone_elses = people["admin"].user.tokens[0].id
    assert post(client, f"/admin/tokens/{someone_elses}/revoke", token).status_code == 404  # no oracle
    assert db.session.get(ApiToken, someone_elses).revoked_at is None
    assert post(client, f"/admin/tokens/{created.id}/revoke", token).status_code == 303
    assert client.get("/api/v1/admin/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 401


def test_the_audit_log_is_newest_first_and_paginated(client, people):
    with unit_of_work():
        for number in range(60):
            record(None, "test.event", "questionnaire", f"q{number:02d}")
    log_in(client, people["admin"].user)  # the login is the newest event
    first = client.get("/admin/audit").get_data(as_text=True)
    objects = re.findall(r"<code>(q\d\d)</code>", first)
    assert objects[:2] == ["q59", "q58"] and len(objects) == 49  # 50 rows, the first is the login
    assert "user.login" in first.split("q59")[0]
    second = client.get("/admin/audit?page=2").get_data(as_text=True)
    assert re.findall(r"<code>(q\d\d)</code>", second)[0] == "q10"
    assert client.get("/admin/audit?page=999").status_code == 200  # the last page
    assert client.get("/admin/audit?page=abc").status_code == 200


FORMULAS = ['=HYPERLINK("http://evil.example","x")', "+SUM(1,2)", "-2+3", "@cmd", "\tx", "\rx"]


def test_the_audit_csv_neutralises_formulas(client, other_browser, people):
    token = log_in(client, people["admin"].user)
    # A staff member whose e-mail address and name are formulas, who then logs in (an audited action).
    made = post(
        client, "/admin/users", token, email="-2+3@example.org", name=FORMULAS[0], role="analyst", password=PASSWORD
    )
    assert made.status_code == 303
    with unit_of_work():
        for formula in FORMULAS:
            record(None, "questionnaire.formula", "questionnaire", formula)
    assert submit_login(other_browser, "-2+3@example.org").status_code == 303

    response = client.get("/admin/audit.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == "attachment; filename=audit.csv"
    assert response.headers["Cache-Control"] == "no-store"
    text = response.get_data(as_text=True)
    assert all(line.startswith('"') for line in text.split("\r\n") if line)  # every field quoted
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    object_ids = [row["object_id"] for row in rows if row["action"] == "questionnaire.formula"]
    assert sorted(object_ids) == sorted("'" + formula for formula in FORMULAS)
    login = next(row for row in rows if row["action"] == "user.login" and "2+3" in row["actor"])
    assert (login["actor"], login["actor_name"]) == ("'-2+3@example.org", "'" + FORMULAS[0])
    assert not any(cell and cell[0] in "=+-@\t\r" for row in rows for cell in row.values())
    assert [int(row["id"]) for row in rows] == sorted(
        db.session.scalars(select(AuditEvent.id)).all(), reverse=True
    )  # every event, newest first
