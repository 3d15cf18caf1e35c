"""Every staff page route × {anonymous, analyst, editor, admin} × {own object, unknown object}.

Anonymous visitors are sent to the login page with ``next``; a role without the permission gets 403
(before any look-up, so an unknown object reveals nothing); an unknown object is a 404; everything
allowed succeeds. Nothing is ever a 500.
"""

from __future__ import annotations

import copy
import functools

import pytest

from survey.accounts.models import User
from survey.accounts.services import create_token, create_user
from survey.db import db, unit_of_work
from survey.questionnaires import services
from survey.questionnaires.definition import validate_definition
from survey.questionnaires.models import Questionnaire
from tests.admin.pages import csrf_token, log_in, login_redirect_target, upload
from tests.factories import all_types_definition
from tests.staff import PASSWORD

Q = "/admin/questionnaires"
READ, WRITE = "questionnaires.read", "questionnaires.write"

# (method, path, permission, form data, the questionnaire's status beforehand)
ROUTES: list[tuple[str, str, str, dict | None, str]] = [
    ("GET", "/admin/", READ, None, "draft"),
    ("POST", "/admin/logout", READ, {}, "draft"),
    ("GET", "/admin/users", "users.manage", None, "draft"),
    (
        "POST",
        "/admin/users",
        "users.manage",
        {"email": "new@example.org", "name": "New", "role": "analyst", "password": PASSWORD},
        "draft",
    ),
    ("POST", "/admin/users/{user}", "users.manage", {"role": "editor"}, "draft"),
    ("GET", "/admin/tokens", READ, None, "draft"),
    ("POST", "/admin/tokens", READ, {"name": "script", "days": "5"}, "draft"),
    ("POST", "/admin/tokens/{token}/revoke", READ, {}, "draft"),
    ("GET", "/admin/audit", "audit.read", None, "draft"),
    ("GET", "/admin/audit.csv", "audit.read", None, "draft"),
    ("GET", f"{Q}/", READ, None, "draft"),
    ("POST", f"{Q}/", WRITE, {"definition": "second"}, "draft"),
    ("GET", f"{Q}/{{code}}", READ, None, "draft"),
    ("POST", f"{Q}/{{code}}/settings", WRITE, {"results_public": "yes", "opens_on": "2030-01-01"}, "draft"),
    ("POST", f"{Q}/{{code}}/publish", WRITE, {}, "draft"),
    ("POST", f"{Q}/{{code}}/open", WRITE, {}, "draft"),
    ("POST", f"{Q}/{{code}}/close", WRITE, {}, "open"),
    ("POST", f"{Q}/{{code}}/reopen", WRITE, {}, "closed"),
    ("POST", f"{Q}/{{code}}/archive", WRITE, {}, "closed"),
    ("POST", f"{Q}/{{code}}/draft", WRITE, {"definition": "all_types"}, "draft"),
    ("POST", f"{Q}/{{code}}/draft/cyrillic", WRITE, {}, "draft"),
    ("POST", f"{Q}/{{code}}/codes", "codes.write", {"count": "3"}, "draft"),
    ("GET", f"{Q}/{{code}}/versions/1.json", READ, None, "draft"),
    ("GET", f"{Q}/{{code}}/versions/1.xlsx", READ, None, "draft"),
    ("GET", f"{Q}/{{code}}/versions/1/preview", READ, None, "draft"),
]


def test_the_matrix_covers_every_staff_page_route(app):
    registered = {
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/admin") and rule.endpoint != "admin.login"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    adapter = app.url_map.bind("localhost")
    covered = {
        (method, adapter.match(path.format(code="c", user=1, token=1), method=method, return_rule=True)[0].rule)
        for method, path, *_rest in ROUTES
    }
    assert covered == registered


def _prepare(status: str) -> None:
    """The questionnaire ``all_types`` in ``status`` (built from a definition validated once: the services
    validate it again on every call, which would dominate the matrix's run time)."""
    with unit_of_work():
        questionnaire = Questionnaire(code="all_types", status="draft", default_language="en", results_public=False)
        db.session.add(questionnaire)
        services.add_version(questionnaire, copy.deepcopy(_valid_definition()))
    if status in ("open", "closed"):
        services.open_questionnaire(questionnaire)
    if status == "closed":
        services.close_questionnaire(questionnaire)


def _staff_member(role: str) -> User:
    """Only the people a case needs (making users and tokens is most of the matrix's run time)."""
    return create_user(f"{role}@example.org", f"The {role}", role, PASSWORD)


@functools.cache
def _valid_definition() -> dict:
    return validate_definition(all_types_definition(), require_complete=False)


@pytest.mark.parametrize("who", ["anonymous", "analyst", "editor", "admin"])
@pytest.mark.parametrize(
    ("method", "path", "permission", "form", "status"), ROUTES, ids=[f"{r[0]} {r[1]}" for r in ROUTES]
)
def test_role_matrix(client, who, method, path, permission, form, status):
    """An unknown object first (where the route names one), then the role's own."""
    person = None if who == "anonymous" else _staff_member(who)
    token = csrf_token(client) if person is None else log_in(client, person)
    subject = _staff_member("analyst" if who != "analyst" else "editor") if "{user}" in path else person
    own_token = create_token(person or subject or _staff_member("analyst"), "mine")[0].id
    targets = {"own": {"code": "all_types", "user": subject.id if subject else 1, "token": own_token}}
    if "{" in path:
        targets = {"unknown": {"code": "no_such_code", "user": 999_999, "token": 999_999}, **targets}
        _prepare(status)

    for target, ids in targets.items():
        url = path.format(**ids)
        data = None
        if form is not None:
            data = {"csrf_token": token, **form}
            if "definition" in data:
                data["definition"] = upload(all_types_definition(data["definition"]))

        response = client.open(url, method=method, data=data)

        assert response.status_code < 500, target
        if person is None:
            assert response.status_code == 302, target
            assert login_redirect_target(response) == url
        elif not person.can(permission):
            assert response.status_code == 403, target
        elif target == "unknown":
            assert response.status_code == 404
        else:
            assert response.status_code in (200, 303), response.get_data(as_text=True)[:2000]
            if response.status_code == 303:
                assert login_redirect_target(response) is None or path == "/admin/logout"
        assert response.headers["Cache-Control"] == "no-store"
