"""Public API schemas of questionnaires (the definition format itself is in ``definition.py``)."""

from __future__ import annotations

from marshmallow import fields, validate

from survey.api import Schema
from survey.questionnaires.fields import StrictBoolean


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


class VersionSummarySchema(Schema):
    number = fields.Integer()
    published_on = fields.Date(allow_none=True)
    checksum = fields.String()
    responses = fields.Integer()


class QuestionnaireAdminSchema(Schema):
    code = fields.String()
    status = fields.String(metadata={"description": "draft, open, closed or archived"})
    effective_status = fields.String(metadata={"description": "the status respondents see, dates applied"})
    default_language = fields.String()
    title = fields.Dict(keys=fields.String(), values=fields.String())
    results_public = fields.Boolean()
    requires_code = fields.Boolean()
    opens_on = fields.Date(allow_none=True)
    closes_on = fields.Date(allow_none=True)
    current_version = fields.Integer(allow_none=True)
    draft_version = fields.Integer(allow_none=True)
    responses = fields.Integer()
    versions = fields.List(fields.Nested(VersionSummarySchema))


class QuestionnaireSettingsSchema(Schema):
    """Settings staff may change; status and versions change only through their own actions."""

    results_public = StrictBoolean()
    requires_code = StrictBoolean()
    opens_on = fields.Date(allow_none=True)
    closes_on = fields.Date(allow_none=True)


class CodesRequestSchema(Schema):
    count = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=100_000))


class FilledSchema(Schema):
    filled = fields.Integer()


class TranslationReportSchema(Schema):
    version = fields.Integer()
    languages = fields.Dict(keys=fields.String(), values=fields.Dict())
