"""Public API schemas of questionnaires (the definition format itself is in ``definition.py``)."""

from __future__ import annotations

from marshmallow import fields

from survey.api import Schema


class LanguagePublicSchema(Schema):
    code = fields.String()
    name = fields.String()


class QuestionnaireSummarySchema(Schema):
    code = fields.String()
    version = fields.Integer()
    default_language = fields.String()
    languages = fields.List(fields.Nested(LanguagePublicSchema))
    title = fields.Dict(keys=fields.String(), values=fields.String())


class QuestionnairePublicSchema(Schema):
    code = fields.String()
    version = fields.Integer()
    status = fields.String()
    results_public = fields.Boolean()
    definition = fields.Dict(metadata={"description": "The published definition (DESIGN §4 format)"})
