"""The public home page: the questionnaires open for responses, in the visitor's language."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from survey.i18n import LANGUAGE_NAMES, LANGUAGES, use_language
from survey.questionnaires.services import list_open_questionnaires

bp = Blueprint("public", __name__)


@bp.get("/")
def index() -> str:
    language = use_language(LANGUAGES, request.args.get("lang"), "en")
    return render_template(
        "index.html",
        lang=language,
        languages=[(tag, LANGUAGE_NAMES[tag]) for tag in LANGUAGES],
        questionnaires=[(q, v.definition) for q, v in list_open_questionnaires()],
    )
