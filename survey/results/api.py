"""Results over JSON: public (from snapshots, disclosure-controlled) and staff (live, exact counts)."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app

from survey.accounts.auth import require, staff
from survey.api import SurveyBlueprint
from survey.questionnaires.services import get_questionnaire
from survey.results import services
from survey.results.schemas import PublicResultsSchema, ResultsQuerySchema, StaffResultsSchema

blp = SurveyBlueprint("results", __name__, url_prefix="/api/v1")
staff_blp = SurveyBlueprint("admin_results", __name__, url_prefix="/api/v1/admin/questionnaires")
CODE = "<string(maxlength=63):code>"


@blp.route(f"/questionnaires/{CODE}/results")
@blp.arguments(ResultsQuerySchema, location="query")
@blp.response(200, PublicResultsSchema)
@blp.alt_response(404, description="No such questionnaire, or its results are not public")
@blp.alt_response(422, description="That breakdown is not offered")
def public_results(query: dict[str, Any], code: str) -> Response:
    """Disclosure-controlled results from the latest snapshot; ?breakdown= one demographic question."""
    body = services.public_results_json(code, query.get("breakdown"))
    return current_app.response_class(body, mimetype="application/json")


@staff_blp.route(f"/{CODE}/results")
@require("results.read")
@staff_blp.arguments(ResultsQuerySchema, location="query")
@staff_blp.response(200, StaffResultsSchema)
def staff_results(query: dict[str, Any], code: str) -> dict[str, Any]:
    """Live results with exact counts and statistics (same group gate as the public ones)."""
    return services.staff_results(code, query.get("breakdown"))


@staff_blp.route(f"/{CODE}/snapshot", methods=["POST"])
@require("results.read")
@staff_blp.response(200, PublicResultsSchema)
def take_snapshot(code: str) -> dict[str, Any]:
    """Take a new public snapshot now if anything changed (the public results then show it)."""
    questionnaire = get_questionnaire(code)
    services.refresh_snapshot(questionnaire, force=True, actor=staff())
    return services.snapshot_results(questionnaire, None)
