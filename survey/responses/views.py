"""The public questionnaire pages: the form (one section a page), the thanks page.

Works without JavaScript. The ``submission_id`` is made when the form is first shown and travels
with every page, so a double click, a refresh or a resend stores one response. Answers given so far
travel in a hidden field; nothing is stored until the final submit calls the submit service.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from flask import Blueprint, abort, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as HTTPResponse

from survey import ratelimit
from survey.errors import (
    QuestionnaireNotOpenError,
    SubmissionConflictError,
    SubmissionInvalidError,
    VersionNotFoundError,
)
from survey.i18n import LANGUAGE_NAMES, gettext, use_language
from survey.questionnaires.models import Questionnaire
from survey.questionnaires.services import (
    VersionCatalog,
    catalog_for,
    current_version,
    get_questionnaire,
    published_version,
    today,
)
from survey.questionnaires.types import field_name, get_type
from survey.responses import codes, forms
from survey.responses.schemas import UUID4
from survey.responses.services import submit_response
from survey.strict_json import StrictJSONError, loads_strict

bp = Blueprint("form", __name__)


@bp.get("/s/<string(maxlength=63):code>")
def start(code: str) -> str | tuple[str, int]:
    questionnaire, catalog, is_open = _questionnaire_and_version(code, request.args.get("version"))
    language = use_language(catalog.languages, request.args.get("lang"), questionnaire.default_language)
    if not is_open:
        return _message(catalog, language, "not_open")
    return _render_page(questionnaire, catalog, language, str(uuid.uuid4()), page=0, answers={}, errors={})


@bp.post("/s/<string(maxlength=63):code>")
def advance(code: str) -> str | tuple[str, int] | HTTPResponse:
    form = request.form
    questionnaire, catalog, is_open = _questionnaire_and_version(code, form.get("version"))
    language = use_language(catalog.languages, form.get("lang"), questionnaire.default_language)
    if not is_open:
        return _message(catalog, language, "not_open")
    if form.get("website"):  # the honeypot: only bots fill a field people cannot see
        return redirect(url_for("form.thanks", code=code, lang=language), code=303)
    submission_id = form.get("submission_id", "")
    if not UUID4.match(submission_id):
        abort(400, gettext("The form was incomplete. Please start again."))

    pages = forms.pages_of(catalog.definition)
    index = _int(form.get("page"), 0, len(pages) - 1)
    page = pages[index]
    answers = forms.merge(_carried(form.get("carried")), forms.read_page(page, form))
    action = form.get("action", "next")

    if action.startswith("lang:"):  # switching language keeps every answer and the page
        language = use_language(catalog.languages, action.removeprefix("lang:"), questionnaire.default_language)
        return _render_page(questionnaire, catalog, language, submission_id, index, answers, {})
    if action == "back":
        previous = forms.next_page(pages, index, answers, -1)
        return _render_page(questionnaire, catalog, language, submission_id, previous or 0, answers, {})

    answers = forms.without_hidden(pages, answers)
    shown_before = set(form.get("shown", "").split(","))
    if {q["code"] for q in forms.visible_questions(page, answers)} - shown_before:
        # An answer on this page revealed a question on it (no script to show it live): show it now.
        return _render_page(questionnaire, catalog, language, submission_id, index, answers, {}, revealed=True)
    codes = {q["code"] for p in pages[: index + 1] for q in p.questions}
    errors = forms.problems(catalog.answer_schema, answers, codes)
    code_problem = _participation_code_problem(questionnaire, form.get("participation_code", ""))
    if page.index == 0 and code_problem:
        errors["participation_code"] = [code_problem]
    if page.code == "consent" and forms.declined(catalog.definition, answers):
        return _message(catalog, language, "screened_out")
    if errors:
        return _render_page(questionnaire, catalog, language, submission_id, index, answers, errors)

    following = forms.next_page(pages, index, answers, +1)
    if following is not None:
        return _render_page(questionnaire, catalog, language, submission_id, following, answers, {})
    return _submit(questionnaire, catalog, language, submission_id, pages, answers, form.get("participation_code"))


@bp.get("/s/<string(maxlength=63):code>/thanks")
def thanks(code: str) -> str:
    questionnaire, catalog, _is_open = _questionnaire_and_version(code, None)
    language = use_language(catalog.languages, request.args.get("lang"), questionnaire.default_language)
    return render_template(
        "thanks.html", definition=catalog.definition, lang=language, languages=_language_links(catalog)
    )


def _questionnaire_and_version(code: str, version: str | None) -> tuple[Questionnaire, VersionCatalog, bool]:
    """The questionnaire, the catalog of the version to show, and whether it takes answers now.

    A page names the version it was made from, so a respondent who started before a new version
    was published finishes the one they started.
    """
    questionnaire = get_questionnaire(code)
    status = questionnaire.effective_status(today())
    if status == "draft" or current_version(questionnaire) is None:
        abort(404)
    number = int(version) if version and version.isdigit() and len(version) < 9 else None
    try:
        catalog = catalog_for(published_version(questionnaire, number))
    except VersionNotFoundError:
        catalog = catalog_for(published_version(questionnaire))
    return questionnaire, catalog, status == "open"


def _submit(
    questionnaire: Questionnaire,
    catalog: VersionCatalog,
    language: str,
    submission_id: str,
    pages: list[forms.Page],
    answers: dict[str, Any],
    participation_code: str | None,
) -> str | tuple[str, int] | HTTPResponse:
    payload = {"submission_id": submission_id, "language": language, "version": catalog.number, "answers": answers}
    if questionnaire.requires_code:
        payload["participation_code"] = participation_code
    scope = f"submit:{questionnaire.code}"
    ratelimit.check(scope, "SUBMISSION_RATE_LIMIT")
    try:
        result = submit_response(questionnaire.code, payload, channel="web")
    except SubmissionInvalidError as error:
        # Back to the first page with a problem (the checks page by page should have caught it,
        # unless a code was spent meanwhile).
        found = error.errors or {}
        answer_errors = dict(found.get("answers", {}))
        if "participation_code" in found:
            answer_errors["participation_code"] = found["participation_code"]
        first = next((p.index for p in pages if any(q["code"] in answer_errors for q in p.questions)), 0)
        return _render_page(questionnaire, catalog, language, submission_id, first, answers, answer_errors)
    except SubmissionConflictError:
        return _message(catalog, language, "already_submitted")
    except QuestionnaireNotOpenError:
        return _message(catalog, language, "not_open")
    if result.created:
        ratelimit.spend(scope, "SUBMISSION_RATE_LIMIT")
    return redirect(url_for("form.thanks", code=questionnaire.code, lang=language), code=303)


def _render_page(
    questionnaire: Questionnaire,
    catalog: VersionCatalog,
    language: str,
    submission_id: str,
    page: int,
    answers: dict[str, Any],
    errors: dict[str, Any],
    revealed: bool = False,
) -> str | tuple[str, int]:
    pages = forms.pages_of(catalog.definition)
    current = pages[page]
    visible = {q["code"] for q in forms.visible_questions(current, answers)}
    questions = [
        {
            "spec": question,
            "kind": get_type(question["type"]),
            "visible": question["code"] in visible,
            "options": forms.in_respondent_order(
                _choices(question), bool(question.get("randomize_options")), f"{submission_id}:{question['code']}"
            ),
            "rows": forms.in_respondent_order(
                question.get("rows", []), bool(question.get("randomize_rows")), f"{submission_id}:{question['code']}"
            ),
            "value": answers.get(question["code"]),
            "errors": errors.get(question["code"]),
            "name": field_name(question),
        }
        for question in current.questions
    ]
    on_page = {q["code"] for q in current.questions}
    body = render_template(
        "form.html",
        questionnaire=questionnaire,
        definition=catalog.definition,
        version=catalog.number,
        lang=language,
        languages=_language_links(catalog),
        page=current,
        page_count=len(pages),
        first=forms.next_page(pages, page, answers, -1) is None,
        last=forms.next_page(pages, page, answers, +1) is None,
        questions=questions,
        errors=errors,
        revealed=revealed,
        shown=",".join(sorted(visible)),
        submission_id=submission_id,
        participation_code=request.form.get("participation_code", "") if request.method == "POST" else "",
        carried=json.dumps({code: value for code, value in answers.items() if code not in on_page}),
        field_name=field_name,
    )
    return (body, 422) if errors else body


def _participation_code_problem(questionnaire: Questionnaire, code: str) -> str | None:
    if not questionnaire.requires_code:
        return None
    if not code.strip():
        return gettext("A participation code is required.")
    if not codes.is_usable(questionnaire, code):
        return codes.used_message()
    return None


def _choices(question: dict[str, Any]) -> list[dict[str, Any]]:
    if "options" in question:
        return question["options"]
    scale = question.get("scale")
    if scale:
        return scale["points"] + scale.get("non_substantive", [])
    return question.get("non_substantive", [])


def _message(catalog: VersionCatalog, language: str, kind: str) -> tuple[str, int]:
    status = {"not_open": 409, "already_submitted": 409, "screened_out": 200}[kind]
    page = render_template(
        "message.html", definition=catalog.definition, lang=language, kind=kind, languages=_language_links(catalog)
    )
    return page, status


def _language_links(catalog: VersionCatalog) -> list[tuple[str, str]]:
    return [(tag, LANGUAGE_NAMES.get(tag, tag)) for tag in catalog.languages]


def _carried(raw: str | None) -> dict[str, Any]:
    """Answers from earlier pages; anything unreadable counts as nothing (it is re-validated anyway)."""
    if not raw:
        return {}
    try:
        value = loads_strict(raw)
    except StrictJSONError:
        return {}
    return value if isinstance(value, dict) else {}


def _int(value: str | None, low: int, high: int) -> int:
    try:
        return min(max(int(value or low), low), high)
    except ValueError:
        return low
