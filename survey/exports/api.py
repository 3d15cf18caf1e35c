"""Staff downloads of responses (``GET /api/v1/admin/questionnaires/{code}/export``), streamed.

Analysts and admins only, every download audit-logged. Free text is scrubbed of contact details
unless an admin asks for it raw. The file streams from a read-only transaction, so a long export
neither fills memory nor holds back submissions.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from flask import Response, stream_with_context
from marshmallow import fields, validate

from survey.accounts.auth import require, staff
from survey.accounts.services import record
from survey.api import Schema, SurveyBlueprint
from survey.db import begin_read_only, db, unit_of_work
from survey.errors import PermissionDeniedError
from survey.exports.dataset import ExportOptions
from survey.exports.services import prepare_dataset
from survey.exports.writers import FORMATS, get_format, iter_export
from survey.questionnaires.services import get_questionnaire

blp = SurveyBlueprint("admin_exports", __name__, url_prefix="/api/v1/admin/questionnaires")


class ExportQuerySchema(Schema):
    format = fields.String(load_default="csv", validate=validate.OneOf(list(FORMATS)))
    language = fields.String(validate=validate.Length(max=35))
    month = fields.Boolean(load_default=False, metadata={"description": "month instead of day"})
    text = fields.String(load_default="scrub", validate=validate.OneOf(["scrub", "drop", "raw"]))
    partner = fields.Boolean(load_default=False, metadata={"description": "k-anonymous partner microdata"})
    k = fields.Integer(load_default=5, validate=validate.Range(2, 100))
    bom = fields.Boolean(load_default=False, metadata={"description": "CSV: a UTF-8 byte order mark for Excel"})
    labels = fields.Boolean(load_default=False, metadata={"description": "CSV/XLSX: labels instead of codes"})


@blp.route("/<string(maxlength=63):code>/export")
@require("exports.read")
@blp.arguments(ExportQuerySchema, location="query")
@blp.response(200, description="The responses, one row each, in the chosen format")
@blp.alt_response(409, description="A partner export would not meet the disclosure rules")
def export(query: dict[str, Any], code: str) -> Response:
    """Download the responses of a questionnaire (CSV, XLSX, JSON lines, SPSS, Stata, data package)."""
    actor = staff()
    if query["text"] == "raw" and not actor.can("users.manage"):  # type: ignore[union-attr]
        raise PermissionDeniedError("Only an admin may export free text unscrubbed.")
    questionnaire = get_questionnaire(code)
    fmt = get_format(query["format"])
    writer_options = {name: True for name in ("bom", "labels") if query[name] and name in _options_of(fmt.name)}
    with unit_of_work():
        record(
            actor,
            "responses.export",
            "questionnaire",
            questionnaire.code,
            format=fmt.name,
            partner=query["partner"],
            text=query["text"],
        )

    begin_read_only()
    options = ExportOptions(
        language=query.get("language"),
        date_precision="month" if query["month"] else "day",
        free_text=query["text"],
        order="shuffled" if query["partner"] else "id",
    )
    dataset, _report = prepare_dataset(code, options, partner=query["partner"], k=query["k"])

    def chunks() -> Iterator[bytes]:
        try:
            yield from iter_export(fmt.name, dataset, **writer_options)
        finally:
            db.session.rollback()

    filename = f"{questionnaire.code}-responses.{fmt.extension}"
    return Response(
        stream_with_context(chunks()),
        mimetype=fmt.media_type,
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}",
            "Cache-Control": "no-store",
        },
    )


def _options_of(format_name: str) -> set[str]:
    from survey.exports.services import WRITER_OPTIONS

    return WRITER_OPTIONS[format_name]
