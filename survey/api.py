"""Project-level flask-smorest classes: every JSON endpoint uses these, never the library's own.

- :class:`SurveyApi` leaves error handling to :mod:`survey.errors` (one problem+json shape).
- :class:`SurveyBlueprint` parses bodies with the strict JSON decoder and insists on a JSON body.
- :class:`Schema` refuses unknown fields (mass-assignment protection, promise S8).
"""

from __future__ import annotations

import datetime as dt
import http
from typing import Any

import flask_smorest
import marshmallow as ma
from apispec import BasePlugin
from flask import Request, current_app, request
from webargs import core
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import UnsupportedMediaType

from survey.errors import PROBLEM_JSON
from survey.strict_json import loads_strict


class Schema(ma.Schema):
    class Meta:
        unknown = ma.RAISE


def json_body(req: Request | None = None) -> Any:
    """The request's body decoded strictly; 415 unless it is declared as JSON."""
    req = req or request
    if not core.is_json(req.mimetype):
        raise UnsupportedMediaType("The request body must be application/json.")
    return loads_strict(req.get_data(cache=True), current_app.config["JSON_MAX_DEPTH"])


class StrictParser(FlaskParser):
    def _raw_load_json(self, req: Request) -> Any:
        if not req.get_data(cache=True):
            return core.missing
        return json_body(req)


class SurveyBlueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = StrictParser()


class UTCDateTime(ma.fields.DateTime):
    """A moment with its offset: SQLite hands back naive datetimes, and every stored moment is UTC."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        if isinstance(value, dt.datetime) and value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return super()._serialize(value, attr, obj, **kwargs)


class ProblemSchema(ma.Schema):
    """An error (RFC 9457 problem document)."""

    type = ma.fields.String(required=True)
    title = ma.fields.String(required=True)
    status = ma.fields.Integer(required=True)
    detail = ma.fields.String(required=True)
    code = ma.fields.String(required=True, metadata={"description": "machine-readable reason"})
    errors = ma.fields.Dict(metadata={"description": "field messages, keyed by field and question code"})


class AdminSecurityPlugin(BasePlugin):
    """Marks every /api/v1/admin operation as needing a bearer token in the OpenAPI document."""

    def operation_helper(self, path: str | None = None, operations: dict | None = None, **kwargs: Any) -> None:
        if path and path.startswith("/api/v1/admin") and operations:
            for operation in operations.values():
                operation.setdefault("security", [{"bearerAuth": []}])


class SurveyApi(flask_smorest.Api):
    ERROR_SCHEMA = ProblemSchema

    def __init__(self) -> None:
        super().__init__(spec_kwargs={"extra_plugins": [AdminSecurityPlugin()]})

    def _register_error_handlers(self) -> None:
        """Errors are rendered by survey.errors for the whole app."""

    def _register_responses(self) -> None:
        """Document error responses as what they are: problem documents."""
        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if status >= 400:
                response["content"] = {PROBLEM_JSON: {"schema": ProblemSchema}}
            self.spec.components.response(status.name, response, lazy=True)
        self.spec.components.response(
            "DEFAULT_ERROR",
            {"description": "An error", "content": {PROBLEM_JSON: {"schema": ProblemSchema}}},
            lazy=True,
        )
        self.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
