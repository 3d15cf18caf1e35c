"""Staff JSON API for questionnaires (``/api/v1/admin``): drafts, publishing, the lifecycle, settings,
translations and participation codes. Every call needs a bearer token and the right role."""

from __future__ import annotations

from typing import Any

from flask import Response
from flask.views import MethodView
from sqlalchemy import select

from survey.accounts.auth import require, staff
from survey.api import SurveyBlueprint, json_body
from survey.db import db
from survey.errors import NotFoundError
from survey.questionnaires import services
from survey.questionnaires.models import Questionnaire
from survey.questionnaires.schemas import (
    CodesRequestSchema,
    FilledSchema,
    QuestionnaireAdminSchema,
    QuestionnaireSettingsSchema,
    TranslationReportSchema,
)
from survey.questionnaires.services import describe, version_of
from survey.questionnaires.translation import completeness, fill_cyrillic
from survey.responses.codes import codes_csv, issue_codes

blp = SurveyBlueprint("admin_questionnaires", __name__, url_prefix="/api/v1/admin/questionnaires")
CODE = "<string(maxlength=63):code>"
DEFINITION_BODY = {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}


@blp.route("")
class AdminQuestionnaires(MethodView):
    @require("questionnaires.read")
    @blp.response(200, QuestionnaireAdminSchema(many=True))
    def get(self) -> list[dict[str, Any]]:
        """List every questionnaire with its status, versions and response counts."""
        return [describe(q) for q in db.session.scalars(select(Questionnaire).order_by(Questionnaire.code))]

    @require("questionnaires.write")
    @blp.doc(requestBody=DEFINITION_BODY)
    @blp.response(201, QuestionnaireAdminSchema)
    @blp.alt_response(409, description="A questionnaire with this code exists")
    @blp.alt_response(422, description="The definition is invalid: every problem with its path")
    def post(self) -> dict[str, Any]:
        """Create a draft questionnaire from a definition (DESIGN §4 JSON)."""
        return describe(services.create_questionnaire(json_body(), actor=staff()))


@blp.route(f"/{CODE}")
class AdminQuestionnaire(MethodView):
    @require("questionnaires.read")
    @blp.response(200, QuestionnaireAdminSchema)
    def get(self, code: str) -> dict[str, Any]:
        """One questionnaire with its versions."""
        return describe(services.get_questionnaire(code))

    @require("questionnaires.write")
    @blp.arguments(QuestionnaireSettingsSchema)
    @blp.response(200, QuestionnaireAdminSchema)
    def patch(self, settings: dict[str, Any], code: str) -> dict[str, Any]:
        """Change settings: public results, participation codes, open and close dates."""
        questionnaire = services.get_questionnaire(code)
        services.change_settings(questionnaire, settings, actor=staff())
        return describe(questionnaire)


@blp.route(f"/{CODE}/draft")
class AdminDraft(MethodView):
    @require("questionnaires.write")
    @blp.doc(requestBody=DEFINITION_BODY)
    @blp.response(200, QuestionnaireAdminSchema)
    @blp.alt_response(422, description="The definition is invalid: every problem with its path")
    def put(self, code: str) -> dict[str, Any]:
        """Replace the draft version's definition, or start a new draft version."""
        questionnaire = services.get_questionnaire(code)
        services.save_draft(questionnaire, json_body(), actor=staff())
        return describe(questionnaire)


def _lifecycle(action: str, summary: str) -> None:
    def view(code: str) -> dict[str, Any]:
        questionnaire = services.get_questionnaire(code)
        act = {
            "publish": services.publish_draft,
            "open": services.open_questionnaire,
            "close": services.close_questionnaire,
            "archive": services.archive_questionnaire,
        }[action]
        act(questionnaire, actor=staff())
        return describe(questionnaire)

    view.__name__ = f"{action}_questionnaire"
    view.__doc__ = summary
    documented = blp.alt_response(409, description="Not allowed from the current status")(
        blp.response(200, QuestionnaireAdminSchema)(view)
    )
    blp.route(f"/{CODE}/{action}", methods=["POST"])(require("questionnaires.write")(documented))


_lifecycle("publish", "Publish the draft version (complete in every language); it becomes current.")
_lifecycle("open", "Open (or reopen) the questionnaire for responses.")
_lifecycle("close", "Close the questionnaire: no more responses.")
_lifecycle("archive", "Archive a closed questionnaire.")


@blp.route(f"/{CODE}/versions/<int(max=1000000):number>")
class AdminVersion(MethodView):
    @require("questionnaires.read")
    @blp.response(200, description="The version's definition (DESIGN §4 JSON)")
    def get(self, code: str, number: int) -> Any:
        """Export one version's definition as JSON."""
        return version_of(services.get_questionnaire(code), number).definition


@blp.route(f"/{CODE}/translations")
class AdminTranslations(MethodView):
    @require("questionnaires.read")
    @blp.response(200, TranslationReportSchema)
    def get(self, code: str) -> dict[str, Any]:
        """Translation completeness per language of the newest version (missing texts by path)."""
        newest = services.get_questionnaire(code).versions[-1]
        return {"version": newest.number, "languages": completeness(newest.definition)}


@blp.route(f"/{CODE}/draft/cyrillic", methods=["POST"])
@require("questionnaires.write")
@blp.response(200, FilledSchema)
def fill_draft_cyrillic(code: str) -> dict[str, int]:
    """Fill the draft's empty Serbian Cyrillic texts from Serbian Latin (existing ones are kept)."""
    questionnaire = services.get_questionnaire(code)
    draft = services.draft_version(questionnaire)
    if draft is None:
        raise NotFoundError("There is no draft version; save one first.")
    definition, filled = fill_cyrillic(draft.definition)
    if filled:
        services.save_draft(questionnaire, definition, actor=staff())
    return {"filled": filled}


@blp.route(f"/{CODE}/codes", methods=["POST"])
@require("codes.write")
@blp.arguments(CodesRequestSchema)
@blp.response(200, description="CSV of one-time codes, shown this once", content_type="text/csv")
def make_codes(body: dict[str, int], code: str) -> Response:
    """Make one-time participation codes (the questionnaire then requires one); only hashes are kept."""
    made = issue_codes(services.get_questionnaire(code), body["count"], actor=staff())
    return Response(
        codes_csv(made),
        mimetype="text/csv",
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{code}-codes.csv", "Cache-Control": "no-store"},
    )
