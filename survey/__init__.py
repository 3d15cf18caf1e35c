"""The citizen survey service: ``create_app`` builds the Flask application."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import Forbidden

from survey import cli, errors, health, i18n, ratelimit
from survey.accounts import auth
from survey.accounts.api import blp as accounts_admin_api
from survey.accounts.views import bp as admin_pages
from survey.config import load_config
from survey.db import tune_sqlite
from survey.exports.api import blp as exports_admin_api
from survey.exports.api import public_tables as result_tables_api
from survey.extensions import api, csrf, db, migrate
from survey.questionnaires.admin_api import blp as questionnaires_admin_api
from survey.questionnaires.admin_views import bp as questionnaire_admin_pages
from survey.questionnaires.api import blp as questionnaires_api
from survey.questionnaires.views import bp as public_pages
from survey.responses.api import blp as responses_api
from survey.responses.views import bp as form_pages
from survey.results.api import blp as results_api
from survey.results.api import staff_blp as results_admin_api
from survey.results.views import bp as results_pages
from survey.strict_json import StrictJSONProvider

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"

# Pages load nothing from another host and run no inline script or style (promise S1).
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Strict-Transport-Security", "max-age=31536000; includeSubDomains"),
    ("Content-Security-Policy", PAGE_POLICY),
)


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Application factory. It never migrates: ``flask db upgrade`` (run by ``make run``) does."""
    app = Flask(__name__, instance_relative_config=True)
    app.json = StrictJSONProvider(app)
    load_config(app, test_config)

    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS))
    # Per-process memory: compiled versions, submission targets, snapshot-rule checks, public bodies.
    app.extensions["survey"] = {"catalogs": {}, "targets": {}, "snapshot_checks": {}, "result_bodies": {}}
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            tune_sqlite(db.engine)

    ratelimit.init_app(app)
    i18n.init_app(app)
    auth.init_app(app)
    csrf.init_app(app)
    api.init_app(app)
    for blueprint in (
        questionnaires_api,
        responses_api,
        results_api,
        result_tables_api,
        questionnaires_admin_api,
        accounts_admin_api,
        results_admin_api,
        exports_admin_api,
    ):
        api.register_blueprint(blueprint)
        csrf.exempt(blueprint)  # JSON API: bearer tokens, no cookies, no ambient authority to ride on
    app.register_blueprint(public_pages)
    app.register_blueprint(form_pages)
    app.register_blueprint(results_pages)
    app.register_blueprint(health.bp)
    app.register_blueprint(admin_pages)
    app.register_blueprint(questionnaire_admin_pages)
    errors.register_error_handlers(app)
    cli.register(app)
    app.before_request(_same_origin_posts)
    app.after_request(_security_headers)
    return app


def _same_origin_posts() -> None:
    """Refuse a page POST that a browser says came from another site (CSRF defence in depth)."""
    if request.method != "POST" or request.path.startswith("/api/"):
        return
    origin = request.headers.get("Origin")
    if request.headers.get("Sec-Fetch-Site") == "cross-site" or (
        origin and origin != "null" and origin.rstrip("/") != request.host_url.rstrip("/")
    ):
        raise Forbidden("The form was sent from another site.")


def _security_headers(response: Response) -> Response:
    """Headers every response carries (promise S1); a view may have set its own already."""
    headers = response.headers
    present = {name.lower() for name, _value in headers}
    for name, value in SECURITY_HEADERS:
        if name.lower() not in present:
            headers.add(name, value)
    if "cache-control" not in present and (
        response.mimetype in ("application/json", "application/problem+json") or request.path.startswith("/s/")
    ):
        headers.add("Cache-Control", "no-store")  # answers in a form page must not be cached
    return response
