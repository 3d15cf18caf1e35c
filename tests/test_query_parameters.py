"""The JSON API refuses query parameters it does not declare (bad-inputs entry 24): 400, a problem
document naming each one, whether the operation declares query arguments or not; the declared
ones keep working, the pages keep ignoring what they do not read, and the OpenAPI document is the
list the check follows."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from werkzeug.exceptions import UnprocessableEntity

from survey.api import StrictParser, declared_query_parameters
from survey.db import db
from survey.responses.models import Response
from survey.results.schemas import ResultsQuerySchema
from tests.factories import dialogue_answers, submission
from tests.results.test_results_api import fill
from tests.staff import make_staff

CODE = "dialogue_2022"
# (route, role whose token it needs or None): public and admin, with and without query arguments
ROUTES = [
    ("/api/v1/questionnaires", None),
    (f"/api/v1/questionnaires/{CODE}", None),
    (f"/api/v1/questionnaires/{CODE}/results", None),
    (f"/api/v1/questionnaires/{CODE}/results/table", None),
    ("/api/v1/admin/me", "analyst"),
    ("/api/v1/admin/questionnaires", "admin"),
    (f"/api/v1/admin/questionnaires/{CODE}/results", "analyst"),
    (f"/api/v1/admin/questionnaires/{CODE}/export", "analyst"),
    ("/api/v1/admin/audit", "admin"),
    ("/api/v1/openapi.json", None),
]


@pytest.fixture
def people(app: Flask) -> dict[str, Any]:
    return make_staff()


def refused(response: Any, *names: str) -> bool:
    return (
        response.status_code == 400
        and response.mimetype == "application/problem+json"
        and response.json["code"] == "unknown_query_parameter"
        and response.json["errors"] == {name: ["Unknown query parameter."] for name in names}
    )


@pytest.mark.parametrize(("url", "role"), ROUTES, ids=[url for url, _role in ROUTES])
def test_an_unknown_query_parameter_is_a_400_naming_it(client, people, url, role):
    headers = people[role].headers if role else {}
    plain = client.get(url, headers=headers, buffered=True)
    assert 200 <= plain.status_code < 300, plain.get_data()[:300]
    bogus = client.get(url + "?bogus=1", headers=headers, buffered=True)
    assert refused(bogus, "bogus"), bogus.get_data()[:300]
    assert refused(client.get(url + "?bogus=1&Format=csv&bogus=2", headers=headers), "bogus", "Format")
    assert client.head(url + "?bogus=1", headers=headers).status_code == 400


def test_declared_parameters_still_work_next_to_the_rule(client, people):
    fill(60)
    analyst = people["analyst"].headers
    results = client.get(f"/api/v1/questionnaires/{CODE}/results?breakdown=community")
    assert results.status_code == 200 and results.json["breakdown"] == "community"
    assert results.json["status"] == "published"
    mixed = client.get(f"/api/v1/questionnaires/{CODE}/results?breakdown=community&sort=n")
    assert refused(mixed, "sort")  # a declared parameter does not let an unknown one through
    staff = client.get(f"/api/v1/admin/questionnaires/{CODE}/results?breakdown=community", headers=analyst)
    assert staff.status_code == 200 and staff.json["breakdown"] == "community"

    export = f"/api/v1/admin/questionnaires/{CODE}/export"
    jsonl = client.get(export + "?format=jsonl&month=true", headers=analyst, buffered=True)
    assert jsonl.status_code == 200 and jsonl.mimetype != "text/csv"
    lines = jsonl.get_data(as_text=True).splitlines()
    assert len(lines) == 60 and all(isinstance(json.loads(line), dict) for line in lines)
    bom = client.get(export + "?format=csv&bom=true", headers=analyst, buffered=True)
    assert bom.status_code == 200 and bom.get_data().startswith(b"\xef\xbb\xbf")
    assert len(bom.get_data(as_text=True).splitlines()) == 61  # header + 60 rows
    assert client.get(export + "?format=doc", headers=analyst).status_code == 422  # declared, bad value: as before
    table = client.get(f"/api/v1/questionnaires/{CODE}/results/table?format=xlsx&breakdown=community&language=sq")
    assert table.status_code == 200 and table.get_data().startswith(b"PK")
    audit = client.get("/api/v1/admin/audit?limit=1&offset=0", headers=people["admin"].headers)
    assert audit.status_code == 200 and len(audit.json) <= 1


def test_writes_with_an_unknown_parameter_change_nothing(client, people):
    url = f"/api/v1/questionnaires/{CODE}/responses"
    body = submission(answers=dialogue_answers())
    stored = db.session.scalar(select(func.count()).select_from(Response))
    assert refused(client.post(url + "?debug=1", json=body), "debug")
    assert db.session.scalar(select(func.count()).select_from(Response)) == stored
    assert client.post(url, json=body).status_code == 201
    snapshot = f"/api/v1/admin/questionnaires/{CODE}/snapshot"
    assert refused(client.post(snapshot + "?force=1", headers=people["analyst"].headers), "force")
    # before authentication too: the parameter names are public (the OpenAPI document), nothing else is said
    assert refused(client.get("/api/v1/admin/audit?token=x"), "token")


def test_unmatched_urls_and_pages_are_not_concerned(client):
    assert client.get("/api/v1/nothing-here?bogus=1").status_code == 404
    assert client.put(f"/api/v1/questionnaires/{CODE}?bogus=1").status_code == 405
    assert client.get("/?bogus=1").status_code == client.get("/").status_code == 200
    assert client.get(f"/s/{CODE}?bogus=1&lang=en").status_code == 200


def test_the_check_follows_the_openapi_document(app, client):
    """For every documented operation, the accepted query names are exactly the documented ones."""
    document = client.get("/api/v1/openapi.json").json
    checked = 0
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/") or rule.endpoint.startswith("api-docs."):
            continue
        path = re.sub(r"<(?:[^:<>]+:)?(\w+)>", r"{\1}", rule.rule)
        for method, operation in document["paths"][path].items():
            if method == "parameters":
                continue
            documented = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
            view = app.view_functions[rule.endpoint]
            assert declared_query_parameters(view, method.upper()) == documented, (path, method)
            checked += 1
    assert checked >= 25


def test_the_parser_refuses_unknown_query_fields_too(app):
    """The second line: a query schema parsed without the request hook still refuses unknown fields."""
    with app.test_request_context("/?breakdown=community&bogus=1"):
        with pytest.raises(UnprocessableEntity) as caught:  # webargs aborts with its 422
            StrictParser().parse(ResultsQuerySchema(), location="query")
        assert caught.value.data["messages"] == {"query": {"bogus": ["Unknown field."]}}  # type: ignore[attr-defined]
    with app.test_request_context("/?breakdown=community"):
        assert StrictParser().parse(ResultsQuerySchema(), location="query") == {"breakdown": "community"}
