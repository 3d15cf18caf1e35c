"""The JSON submission endpoint: parse, call the submit service, answer 201 or 200."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from survey import ratelimit
from survey.api import SurveyBlueprint, json_body
from survey.responses.schemas import SubmissionReceiptSchema, SubmissionSchema
from survey.responses.services import submit_response

blp = SurveyBlueprint("responses", __name__, url_prefix="/api/v1/questionnaires")


@blp.route("/<string(maxlength=63):code>/responses")
class Responses(MethodView):
    @blp.doc(requestBody={"required": True, "content": {"application/json": {"schema": SubmissionSchema}}})
    @blp.response(201, SubmissionReceiptSchema, description="Stored (only ever said after commit)")
    @blp.alt_response(200, schema=SubmissionReceiptSchema, description="A replay: already stored, nothing new")
    @blp.alt_response(404, description="No such questionnaire")
    @blp.alt_response(409, description="Not open, or the submission_id was used with other answers")
    @blp.alt_response(422, description="Invalid: every problem, keyed by field and question code")
    @blp.alt_response(429, description="Too many responses from this client; Retry-After says when to retry")
    def post(self, code: str) -> tuple[dict[str, Any], int]:
        """Submit one response; resubmitting the same submission_id never stores it twice."""
        scope = f"submit:{code}"
        ratelimit.check(scope, "SUBMISSION_RATE_LIMIT")
        result = submit_response(code, json_body(), channel="api")
        if result.created:  # replays and refusals do not count
            ratelimit.spend(scope, "SUBMISSION_RATE_LIMIT")
        return result.receipt, 201 if result.created else 200
