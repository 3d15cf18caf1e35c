"""Schemas of the results API. The result bodies are built by the disclosure module; these describe them."""

from __future__ import annotations

from marshmallow import fields, validate

from survey.api import Schema

BREAKDOWN = fields.String(
    validate=validate.Regexp(r"^[a-z][a-z0-9_]{0,62}$"),
    metadata={"description": "One demographic question's code, e.g. community"},
)


class ResultsQuerySchema(Schema):
    breakdown = BREAKDOWN


class SnapshotSchema(Schema):
    taken_on = fields.Date()
    n = fields.Raw(metadata={"description": "Responses, rounded to 5 (null before the survey threshold)"})


class PublicResultsSchema(Schema):
    questionnaire = fields.String()
    version = fields.Integer()
    status = fields.String(metadata={"description": "published, or not_yet before enough responses"})
    breakdown = fields.String(allow_none=True)
    snapshot = fields.Nested(SnapshotSchema, allow_none=True)
    questions = fields.List(
        fields.Dict(),
        metadata={"description": "per question: code, type, groups [{group, n, cells [{option, count, percent}]}]"},
    )


class StaffResultsSchema(Schema):
    questionnaire = fields.String()
    version = fields.Integer()
    responses = fields.Integer()
    breakdown = fields.String(allow_none=True)
    questions = fields.List(fields.Dict())
