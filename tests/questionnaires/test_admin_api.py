"""The staff API: a role matrix over every admin route, the lifecycle, versions, settings, tools."""

from __future__ import annotations

import copy
import csv
import io

import pytest
from sqlalchemy import func, select

from survey.accounts.models import AuditEvent
from survey.db import db
from survey.responses.models import Answer, Response
from tests.factories import all_types_definition, submission, valid_answers
from tests.staff import make_staff

A = "/api/v1/admin"


@pytest.fixture
def people(app):
    return make_staff()


def call(client, method, url, who=None, **kwargs):
    headers = {**(who.headers if who else {}), **kwargs.pop("headers", {})}
    return client.open(url, method=method, headers=headers, **kwargs)


def create(client, who, definition=None):
    return call(client, "POST", f"{A}/questionnaires", who, json=definition or all_types_definition())


# (method, path with {code}/{user}/{token}, the permission it needs, a body)
ROUTES = [
    ("GET", "/questionnaires", "questionnaires.read", None),
    ("POST", "/questionnaires", "questionnaires.write", "definition"),
    ("GET", "/questionnaires/{code}", "questionnaires.read", None),
    ("PATCH", "/questionnaires/{code}", "questionnaires.write", {"results_public": True}),
    ("PUT", "/questionnaires/{code}/draft", "questionnaires.write", "definition"),
    ("POST", "/questionnaires/{code}/publish", "questionnaires.write", None),
    ("POST", "/questionnaires/{code}/open", "questionnaires.write", None),
    ("POST", "/questionnaires/{code}/close", "questionnaires.write", None),
    ("POST", "/questionnaires/{code}/archive", "questionnaires.write", None),
    ("GET", "/questionnaires/{code}/versions/1", "questionnaires.read", None),
    ("GET", "/questionnaires/{code}/translations", "questionnaires.read", None),
    ("POST", "/questionnaires/{code}/draft/cyrillic", "questionnaires.write", None),
    ("POST", "/questionnaires/{code}/codes", "codes.write", {"count": 2}),
    ("GET", "/questionnaires/{code}/results", "results.read", None),
    ("POST", "/questionnaires/{code}/snapshot", "results.read", None),
    ("GET", "/questionnaires/{code}/export", "exports.read", None),
    ("GET", "/questionnaires/{code}/results/table", "results.read", None),
    ("GET", "/me", "questionnaires.read", None),
    ("GET", "/users", "users.manage", None),
    (
        "POST",
        "/users",
        "users.manage",
        {"email": "n@example.org", "name": "N", "role": "analyst", "password": "a long enough password"},
    ),
    ("PATCH", "/users/{user}", "users.manage", {"role": "editor"}),
    ("GET", "/tokens", "questionnaires.read", None),
    ("POST", "/tokens", "questionnaires.read", {"name": "t"}),
    ("DELETE", "/tokens/{token}", "questionnaires.read", None),
    ("GET", "/audit", "audit.read", None),
]


def test_the_matrix_covers_every_admin_route(app):
    documented = {
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith(A)
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert len(documented) == len(ROUTES)


@pytest.mark.parametrize("who", ["anonymous", "analyst", "editor", "admin"])
@pytest.mark.parametrize(("method", "path", "permission", "body"), ROUTES, ids=[f"{m} {p}" for m, p, _, _ in ROUTES])
@pytest.mark.parametrize("target", ["own", "unknown"])
def test_role_matrix(client, people, who, method, path, permission, body, target):
    create(client, people["admin"])
    subject = people["analyst"]
    token_owner = people.get(who, subject)  # a token of one's own (someone else's is a 404 unless admin)
    ids = {"code": "all_types", "user": subject.user.id, "token": token_owner.user.tokens[0].id}
    if target == "unknown":
        ids = {"code": "no_such_code", "user": 999_999, "token": 999_999}
    url = A + path.format(**ids)
    if body == "definition":
        body = all_types_definition("all_types" if "{code}" in path else "second")
    person = people.get(who)
    response = call(client, method, url, person, json=body)
    assert response.status_code < 500
    if person is None:
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    elif not person.user.can(permission):
        assert response.status_code == 403, response.json
    elif target == "unknown" and "{" in path:
        assert response.status_code == 404, response.json
    else:
        assert response.status_code not in (401, 403, 404), response.json


def test_mass_assignment_of_server_owned_fields_is_refused(client, people):
    create(client, people["admin"])
    response = call(
        client,
        "PATCH",
        f"{A}/questionnaires/all_types",
        people["editor"],
        json={"status": "open", "id": 7, "results_public": True},
    )
    assert response.status_code == 422
    assert set(response.json["errors"]) == {"status", "id"}
    detail = call(client, "GET", f"{A}/questionnaires/all_types", people["editor"]).json
    assert (detail["status"], detail["results_public"]) == ("draft", False)
    user = call(
        client,
        "POST",
        f"{A}/users",
        people["admin"],
        json={
            "email": "x@example.org",
            "name": "X",
            "role": "admin",
            "password": "a long enough password",
            "active": False,
        },
    )
    assert user.status_code == 422 and "active" in user.json["errors"]


def test_lifecycle_through_the_api(client, people):
    editor = people["editor"]
    q = f"{A}/questionnaires/all_types"
    assert create(client, editor).status_code == 201
    assert create(client, editor).json["code"] == "questionnaire_exists"
    assert call(client, "POST", f"{q}/close", editor).status_code == 409  # a draft cannot close
    assert call(client, "POST", f"{q}/archive", editor).status_code == 409
    opened = call(client, "POST", f"{q}/open", editor).json
    assert (opened["status"], opened["current_version"], opened["draft_version"]) == ("open", 1, None)
    assert call(client, "POST", f"{q}/open", editor).status_code == 409
    assert call(client, "POST", f"{q}/publish", editor).status_code == 409  # nothing to publish
    assert call(client, "POST", f"{q}/close", editor).json["status"] == "closed"
    assert client.post("/api/v1/questionnaires/all_types/responses", json=submission()).json["code"] == (
        "questionnaire_closed"
    )
    assert call(client, "POST", f"{q}/open", editor).json["status"] == "open"  # reopened
    call(client, "POST", f"{q}/close", editor)
    assert call(client, "POST", f"{q}/archive", editor).json["status"] == "archived"
    assert call(client, "POST", f"{q}/open", editor).status_code == 409  # archived is final
    actions = db.session.scalars(
        select(AuditEvent.action).where(AuditEvent.object_id == "all_types").order_by(AuditEvent.id)
    ).all()
    assert actions.count("questionnaire.open") == 2 and "questionnaire.archive" in actions


def test_publishing_needs_every_language(client, people):
    editor = people["editor"]
    definition = all_types_definition()
    definition["title"].pop("sq")
    assert create(client, editor, definition).status_code == 201  # a draft may be incomplete
    response = call(client, "POST", f"{A}/questionnaires/all_types/publish", editor)
    assert response.status_code == 422
    assert "title.sq: missing translation" in response.json["errors"]["problems"]
    report = call(client, "GET", f"{A}/questionnaires/all_types/translations", editor).json
    assert report["languages"]["sq"]["missing"] == ["title"]
    assert report["languages"]["en"]["missing"] == []


def test_cyrillic_is_filled_from_latin_in_the_draft(client, people):
    editor = people["editor"]
    definition = all_types_definition()
    definition["title"]["sr-Latn"] = "Đorđe i Ljubica"
    del definition["title"]["sr-Cyrl"]
    create(client, editor, definition)
    assert call(client, "POST", f"{A}/questionnaires/all_types/draft/cyrillic", editor).json == {"filled": 1}
    version = call(client, "GET", f"{A}/questionnaires/all_types/versions/1", editor).json
    assert version["title"]["sr-Cyrl"] == "Ђорђе и Љубица"


def test_a_corrected_version_keeps_every_earlier_answer(client, people):
    """Add, remove, reorder and relabel questions after responses exist."""
    editor = people["editor"]
    q = f"{A}/questionnaires/all_types"
    create(client, editor)
    call(client, "POST", f"{q}/open", editor)
    for _ in range(3):
        assert client.post("/api/v1/questionnaires/all_types/responses", json=submission()).status_code == 201
    answers_v1 = db.session.scalar(select(func.count()).select_from(Answer))

    v2 = copy.deepcopy(all_types_definition())
    main = v2["sections"][0]["questions"]
    main.remove(next(x for x in main if x["code"] == "household"))  # removed
    main.insert(0, main.pop(next(i for i, x in enumerate(main) if x["code"] == "support")))  # reordered
    next(x for x in main if x["code"] == "heard")["text"]["en"] = "Have you heard? (relabelled)"
    main.append({"code": "new_q", "type": "text", "text": {k: "New" for k in ("en", "sq", "sr-Latn", "sr-Cyrl")}})
    assert call(client, "PUT", f"{q}/draft", editor, json=v2).json["draft_version"] == 2
    published = call(client, "POST", f"{q}/publish", editor).json
    assert (published["current_version"], published["status"]) == (2, "open")

    answers = valid_answers()
    del answers["household"]
    answers["new_q"] = "new"
    assert (
        client.post("/api/v1/questionnaires/all_types/responses", json=submission(answers=answers)).status_code == 201
    )
    old = submission()
    assert client.post("/api/v1/questionnaires/all_types/responses", json=old).json["errors"]["answers"] == {
        "household": ["Unknown field."]
    }
    assert client.post("/api/v1/questionnaires/all_types/responses", json={**old, "version": 1}).status_code == 201

    detail = call(client, "GET", q, editor).json
    assert [(v["number"], v["responses"]) for v in detail["versions"]] == [(1, 4), (2, 1)]
    assert db.session.scalar(select(func.count()).select_from(Answer)) > answers_v1
    v1 = call(client, "GET", f"{q}/versions/1", editor).json
    assert any(x["code"] == "household" for x in v1["sections"][0]["questions"])  # v1 unchanged
    assert db.session.scalar(select(func.count()).select_from(Response)) == 5


def test_settings_and_codes(client, people):
    editor = people["editor"]
    create(client, editor)
    patched = call(
        client,
        "PATCH",
        f"{A}/questionnaires/all_types",
        editor,
        json={"results_public": True, "closes_on": "2030-01-31"},
    ).json
    assert (patched["results_public"], patched["closes_on"]) == (True, "2030-01-31")
    response = call(client, "POST", f"{A}/questionnaires/all_types/codes", editor, json={"count": 4})
    assert response.mimetype == "text/csv" and "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert len(rows) == 5 and rows[0] == ["participation_code"]
    assert call(client, "GET", f"{A}/questionnaires/all_types", editor).json["requires_code"] is True
    assert call(client, "POST", f"{A}/questionnaires/all_types/codes", editor, json={"count": 0}).status_code == 422


def test_tokens_are_shown_once_and_revocable(client, people):
    analyst = people["analyst"]
    made = call(client, "POST", f"{A}/tokens", analyst, json={"name": "script", "days": 30})
    assert made.status_code == 201 and made.json["token"].startswith("sv_")
    listed = call(client, "GET", f"{A}/tokens", analyst).json
    assert all("token" not in t for t in listed) and len(listed) == 2
    other = call(client, "POST", f"{A}/tokens", analyst, json={"name": "x", "user_id": people["admin"].user.id})
    assert other.status_code == 403
    admins_token = people["admin"].user.tokens[0].id
    assert call(client, "DELETE", f"{A}/tokens/{admins_token}", analyst).status_code == 404  # no oracle
    assert call(client, "DELETE", f"{A}/tokens/{made.json['id']}", analyst).status_code == 204
    assert (
        call(client, "GET", f"{A}/me", None, headers={"Authorization": f"Bearer {made.json['token']}"}).status_code
        == 401
    )


def test_the_last_admin_cannot_be_demoted(client, people):
    admin = people["admin"]
    response = call(client, "PATCH", f"{A}/users/{admin.user.id}", admin, json={"role": "editor"})
    assert response.status_code == 403
    demoted = call(client, "PATCH", f"{A}/users/{people['editor'].user.id}", admin, json={"role": "analyst"})
    assert demoted.json["role"] == "analyst"


def test_audit_log_records_staff_actions_without_respondent_data(client, people):
    editor = people["editor"]
    create(client, editor)
    call(client, "POST", f"{A}/questionnaires/all_types/open", editor)
    client.post("/api/v1/questionnaires/all_types/responses", json=submission())
    events = call(client, "GET", f"{A}/audit?action=questionnaire.open", people["admin"]).json
    assert (events[0]["actor"], events[0]["object_id"]) == ("editor@example.org", "all_types")  # newest first
    assert {e["action"] for e in events} == {"questionnaire.open"}
    everything = call(client, "GET", f"{A}/audit?limit=1000", people["admin"]).get_data(as_text=True)
    assert "Prishtinë" not in everything and "response" not in everything.lower().replace("responses", "")
