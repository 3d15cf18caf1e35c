"""Project-level flask-smorest classes: every JSON endpoint uses these, never the library's own.

- :class:`SurveyApi` leaves error handling to :mod:`survey.errors` (one problem+json shape).
- :class:`SurveyBlueprint` parses bodies with the strict JSON decoder and insists on a JSON body.
- :class:`Schema` refuses unknown fields (mass-assignment protection, promise S8).
- Every JSON API route refuses query parameters it does not declare (400, each one named), whether
  or not it declares any: a misspelt ``?breakdwon=`` must not silently give unfiltered results, and
  nothing a client adds to a URL is read by accident (bad-inputs entry 24).
"""

from __future__ import annotations

import datetime as dt
import http
from collections.abc import Callable, Mapping
from typing import Any

import flask_smorest
import marshmallow as ma
from apispec import BasePlugin
from flask import Flask, Request, current_app, request
from webargs import core
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import UnsupportedMediaType

from survey.errors import PROBLEM_JSON, SurveyError
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


class UnknownQueryParameterError(SurveyError):
    status, code, title = 400, "unknown_query_parameter", "Unknown query parameter"

    def __init__(self, names: list[str]) -> None:
        super().__init__(
            "The request has query parameters this operation does not take.",
            {name: ["Unknown query parameter."] for name in names},
        )


API_PREFIX = "/api/"
QUERY_LOCATIONS = ("query", "querystring")


class StrictParser(FlaskParser):
    # webargs excludes unknown query fields by default; the schemas' own RAISE applies instead. The
    # request hook of SurveyApi refuses them first, with a 400 naming them; this is the second line.
    DEFAULT_UNKNOWN_BY_LOCATION = {
        **FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION,
        **dict.fromkeys(QUERY_LOCATIONS, ma.RAISE),
    }

    def _raw_load_json(self, req: Request) -> Any:
        if not req.get_data(cache=True):
            return core.missing
        return json_body(req)


class SurveyBlueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = StrictParser()

    def alt_response(self, *args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Document an alternative response exactly as flask-smorest does, without its wrapper.

        flask-smorest's wrapper only calls the view, yet costs every request of the view a frame, a
        look-up of the current app and a coroutine check per documented response (issue 7). The view
        is returned as it is, carrying the documentation the wrapper would have carried.
        """
        document = super().alt_response(*args, **kwargs)

        def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
            view._apidoc = document(view)._apidoc  # type: ignore[attr-defined]
            return view

        return decorator


def declared_query_parameters(view: Callable[..., Any], method: str) -> frozenset[str]:
    """The query parameter names a view takes for ``method``, read from its flask-smorest ``_apidoc``
    (``@blp.arguments(..., location="query")`` schemas and ``@blp.doc(parameters=[...])``)."""
    view_class = getattr(view, "view_class", None)
    function: Any = view
    if view_class is not None:  # a MethodView: the docs are on its method functions
        function = getattr(view_class, method.lower(), None)
        if function is None and method == "HEAD":
            function = getattr(view_class, "get", None)
    apidoc: Mapping[str, Any] = getattr(function, "_apidoc", None) or {}
    names: set[str] = set()
    for parameter in apidoc.get("arguments", {}).get("parameters", []):
        if isinstance(parameter, Mapping) and parameter.get("in") in QUERY_LOCATIONS:
            schema = parameter["schema"]
            if isinstance(schema, Mapping):
                schema = ma.Schema.from_dict(dict(schema))
            if isinstance(schema, type):
                schema = schema()
            names.update(field.data_key or name for name, field in schema.load_fields.items())
    for parameter in apidoc.get("manual_doc", {}).get("parameters", []):
        if isinstance(parameter, Mapping) and parameter.get("in") == "query" and "name" in parameter:
            names.add(parameter["name"])
    return frozenset(names)


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
        self._declared_query: dict[tuple[Callable[..., Any], str], frozenset[str]] = {}

    def init_app(self, app: Flask, *, spec_kwargs: dict[str, Any] | None = None) -> None:
        super().init_app(app, spec_kwargs=spec_kwargs)
        app.before_request(self._refuse_unknown_query_parameters)

    def _refuse_unknown_query_parameters(self) -> None:
        """400 for a query parameter the matched API operation does not declare (the OpenAPI
        document is the list). Unmatched URLs keep their 404/405; pages are not concerned."""
        if not request.query_string or not request.path.startswith(API_PREFIX) or request.url_rule is None:
            return
        view = current_app.view_functions[request.endpoint]  # type: ignore[index]
        key = (view, request.method)
        declared = self._declared_query.get(key)
        if declared is None:
            declared = self._declared_query[key] = declared_query_parameters(view, request.method)
        unknown = [name for name in request.args if name not in declared]
        if unknown:
            raise UnknownQueryParameterError(unknown)

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
