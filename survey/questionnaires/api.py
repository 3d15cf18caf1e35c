"""Public JSON endpoints of questionnaires: what is open, and one published definition."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from survey.api import SurveyBlueprint
from survey.errors import QuestionnaireNotFoundError
from survey.questionnaires.schemas import QuestionnairePublicSchema, QuestionnaireSummarySchema
from survey.questionnaires.services import current_version, get_questionnaire, list_open_questionnaires

blp = SurveyBlueprint("questionnaires", __name__, url_prefix="/api/v1/questionnaires")


@blp.route("")
class Questionnaires(MethodView):
    @blp.response(200, QuestionnaireSummarySchema(many=True))
    def get(self) -> list[dict[str, Any]]:
        """List the questionnaires open for responses."""
        return [
            {
                "code": questionnaire.code,
                "version": version.number,
                "default_language": questionnaire.default_language,
                "languages": version.definition["languages"],
                "title": version.definition["title"],
            }
            for questionnaire, version in list_open_questionnaires()
        ]


@blp.route("/<string(maxlength=63):code>")
class QuestionnaireDetail(MethodView):
    @blp.response(200, QuestionnairePublicSchema)
    @blp.alt_response(404, description="No such questionnaire, or none of its versions is published")
    def get(self, code: str) -> dict[str, Any]:
        """Get the published definition of a questionnaire, with its version number."""
        questionnaire = get_questionnaire(code)
        version = current_version(questionnaire)
        if version is None or questionnaire.status == "draft":
            raise QuestionnaireNotFoundError(f"There is no questionnaire {code!r}.")
        return {
            "code": questionnaire.code,
            "version": version.number,
            "status": questionnaire.status,
            "results_public": questionnaire.results_public,
            "definition": version.definition,
        }
