"""The application factory, configuration precedence, health and the HTTP error shape."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from flask import Flask

from survey import create_app
from survey.api import SurveyBlueprint
from survey.config import normalise_database_url


def _app_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, test_config: dict | None = None) -> Flask:
    """create_app with nothing set, its instance folder under tmp_path."""
    for name in [n for n in os.environ if n.startswith("SURVEY_")]:
        monkeypatch.delenv(name)
    monkeypatch.setattr(Flask, "auto_find_instance_path", lambda self: str(tmp_path / "instance"))
    return create_app(test_config)


def test_defaults_serve_from_the_instance_sqlite_file(tmp_path, monkeypatch):
    app = _app_in(tmp_path, monkeypatch)
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'instance' / 'survey.sqlite3'}"
    assert not app.testing


def test_secret_key_is_generated_once_and_kept_private(tmp_path, monkeypatch):
    first = _app_in(tmp_path, monkeypatch).config["SECRET_KEY"]
    second = _app_in(tmp_path, monkeypatch).config["SECRET_KEY"]
    key_file = tmp_path / "instance" / "secret_key"
    assert first == second == key_file.read_text()
    assert len(first) == 64
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600


def test_precedence_defaults_instance_file_environment_test_config(tmp_path, monkeypatch):
    instance = tmp_path / "instance"
    instance.mkdir()
    (instance / "config.py").write_text('DATABASE_URL = "sqlite:////from/instance.db"\nJSON_MAX_DEPTH = 7\n')
    app = _app_in(tmp_path, monkeypatch)
    assert app.config["DATABASE_URL"] == "sqlite:////from/instance.db"
    assert app.config["JSON_MAX_DEPTH"] == 7

    monkeypatch.setenv("SURVEY_DATABASE_URL", "postgres://u@db.example/s")
    app = create_app()
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@db.example/s"
    assert app.config["JSON_MAX_DEPTH"] == 7  # still from the instance file

    app = create_app({"DATABASE_URL": "sqlite:////from/test.db", "JSON_MAX_DEPTH": 3})
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "sqlite:////from/test.db"
    assert app.config["JSON_MAX_DEPTH"] == 3


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://a@h/d", "postgresql+psycopg://a@h/d"),
        ("postgresql://a@h/d", "postgresql+psycopg://a@h/d"),
        ("postgresql+psycopg://a@h/d", "postgresql+psycopg://a@h/d"),
        ("sqlite:///x.db", "sqlite:///x.db"),
    ],
)
def test_database_url_forms(given, expected):
    assert normalise_database_url(given) == expected


def test_testing_flag_comes_from_test_config(app):
    assert app.testing


def test_health_reports_database(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "database": "ok"}


def test_health_reports_unreachable_database(tmp_path):
    app = create_app({"DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none", "DB_POOL_TIMEOUT": 1})
    response = app.test_client().get("/health")
    assert response.status_code == 503
    assert response.json == {"status": "degraded", "database": "unreachable"}


def test_unknown_route_is_a_problem_document(client):
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert response.json["status"] == 404 and response.json["title"] == "Not Found"


def test_wrong_method_says_what_is_allowed(client):
    response = client.put("/api/v1/questionnaires")
    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) >= {"GET"}
    assert response.mimetype == "application/problem+json"


def test_security_headers_on_success_and_error(client):
    for response in (client.get("/health"), client.get("/nothing")):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_openapi_document_describes_the_public_api(client):
    spec = client.get("/api/v1/openapi.json").json
    assert spec["openapi"].startswith("3.")
    paths = spec["paths"]
    assert "/api/v1/questionnaires" in paths
    submit = paths["/api/v1/questionnaires/{code}/responses"]["post"]
    assert {"201", "200", "409", "422"} <= set(submit["responses"])
    body = submit["requestBody"]["content"]["application/json"]["schema"]
    assert body["$ref"].endswith("/Submission")


def test_alternative_responses_are_documented_without_wrapping_the_view():
    """SurveyBlueprint.alt_response adds documentation only: the view itself serves the request."""
    blueprint = SurveyBlueprint("documented", __name__)

    def view() -> str:
        return "served"

    documented = blueprint.alt_response(404, description="No such thing")(
        blueprint.alt_response(409, description="Conflict")(view)
    )
    assert documented is view
    responses = view._apidoc["response"]["responses"]
    assert [doc["description"] for doc in responses[404] + responses[409]] == ["No such thing", "Conflict"]
