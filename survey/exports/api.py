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
from survey.exports.tables import table_rows, tables_csv, tables_xlsx
from survey.exports.writers import FORMATS, get_format, iter_export
from survey.questionnaires.services import current_version, get_questionnaire
from survey.results.services import public_results, snapshot_results, staff_results

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


class TableQuerySchema(Schema):
    format = fields.String(load_default="csv", validate=validate.OneOf(["csv", "xlsx"]))
    breakdown = fields.String(validate=validate.Regexp(r"^[a-z][a-z0-9_]{0,62}$"))
    language = fields.String(validate=validate.Length(max=35))


class StaffTableQuerySchema(TableQuerySchema):
    view = fields.String(
        load_default="public",
        validate=validate.OneOf(["public", "staff"]),
        metadata={"description": "public: the published, disclosure-controlled tables; staff: exact counts"},
    )


TABLE_TYPES = {"csv": "text/csv; charset=utf-8", "xlsx": FORMATS["xlsx"].media_type}


def _table_file(questionnaire: Any, results: dict[str, Any], query: dict[str, Any], suffix: str) -> Response:
    definition = current_version(questionnaire).definition
    language = query.get("language") or questionnaire.default_language
    rows = table_rows(results, definition, language)
    body = tables_csv(rows) if query["format"] == "csv" else tables_xlsx(rows)
    name = f"{questionnaire.code}-results{suffix}.{query['format']}"
    return Response(
        body,
        mimetype=TABLE_TYPES[query["format"]],
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}", "Cache-Control": "no-store"},
    )


public_tables = SurveyBlueprint("result_tables", __name__, url_prefix="/api/v1/questionnaires")


@public_tables.route("/<string(maxlength=63):code>/results/table")
@public_tables.arguments(TableQuerySchema, location="query")
@public_tables.response(200, description="The published result tables, one row per cell (CSV or XLSX)")
@public_tables.alt_response(404, description="No such questionnaire, or its results are not public")
def published_table(query: dict[str, Any], code: str) -> Response:
    """The published (disclosure-controlled) result tables as a file, for open-data portals."""
    results = public_results(code, query.get("breakdown"))
    return _table_file(get_questionnaire(code), results, query, f"-{query.get('breakdown') or 'all'}")


@blp.route("/<string(maxlength=63):code>/results/table")
@require("results.read")
@blp.arguments(StaffTableQuerySchema, location="query")
@blp.response(200, description="Result tables, one row per cell (CSV or XLSX)")
def staff_table_file(query: dict[str, Any], code: str) -> Response:
    """Result tables as a file: the public ones (from the snapshot) or the staff view with exact counts."""
    questionnaire = get_questionnaire(code)
    breakdown = query.get("breakdown")
    if query["view"] == "staff":
        results = staff_results(code, breakdown)
    else:
        results = snapshot_results(questionnaire, breakdown)
    with unit_of_work():
        record(staff(), "results.export", "questionnaire", code, view=query["view"], format=query["format"])
    return _table_file(questionnaire, results, query, f"-{query['view']}-{breakdown or 'all'}")
