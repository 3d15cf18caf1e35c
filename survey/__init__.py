"""The citizen survey service: ``create_app`` builds the Flask application."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask, Response

from survey import cli, errors, health
from survey.config import load_config
from survey.db import tune_sqlite
from survey.extensions import api, db, migrate
from survey.questionnaires.api import blp as questionnaires_api
from survey.responses.api import blp as responses_api
from survey.strict_json import StrictJSONProvider

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Application factory. It never migrates: ``flask db upgrade`` (run by ``make run``) does."""
    app = Flask(__name__, instance_relative_config=True)
    app.json = StrictJSONProvider(app)
    load_config(app, test_config)

    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS))
    app.extensions["survey"] = {"catalogs": {}}
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            tune_sqlite(db.engine)

    api.init_app(app)
    api.register_blueprint(questionnaires_api)
    api.register_blueprint(responses_api)
    app.register_blueprint(health.bp)
    errors.register_error_handlers(app)
    cli.register(app)
    app.after_request(_security_headers)
    return app


def _security_headers(response: Response) -> Response:
    """Headers every response carries (promise S1); pages refine the policy when they arrive."""
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
    )
    if response.mimetype in ("application/json", "application/problem+json"):
        headers.setdefault("Cache-Control", "no-store")
    return response
