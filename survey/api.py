"""Project-level flask-smorest classes: every JSON endpoint uses these, never the library's own.

- :class:`SurveyApi` leaves error handling to :mod:`survey.errors` (one problem+json shape).
- :class:`SurveyBlueprint` parses bodies with the strict JSON decoder and insists on a JSON body.
- :class:`Schema` refuses unknown fields (mass-assignment protection, promise S8).
"""

from __future__ import annotations

from typing import Any

import flask_smorest
import marshmallow as ma
from flask import Request, current_app, request
from webargs import core
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import UnsupportedMediaType

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


class SurveyApi(flask_smorest.Api):
    def _register_error_handlers(self) -> None:
        """Errors are rendered by survey.errors for the whole app."""
