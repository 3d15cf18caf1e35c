"""Staff pages for questionnaires (``/admin/questionnaires``): list, upload, lifecycle, settings, versions,
translations, participation codes and a preview of any version in each language.

The HTML twin of :mod:`survey.questionnaires.admin_api`: the same services, the same staff view
(:func:`~survey.questionnaires.services.describe`), the same permissions. Analysts may look
("questionnaires.read"); editors and admins may change ("questionnaires.write"). Lifecycle buttons
are shown only when the move is legal, and the server checks the same rule again. A preview renders
the real question templates with every input disabled and posts nowhere: it can never store a response.
"""

from __future__ import annotations

import datetime as dt
import importlib
import importlib.util
import json
from types import ModuleType
from typing import Any

from flask import Blueprint, Response, current_app, flash, redirect, render_template, request, url_for
from sqlalchemy import select
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response as BaseResponse

from survey.accounts.auth import require, staff
from survey.db import db
from survey.errors import DefinitionInvalidError, IllegalTransitionError, QuestionnaireExistsError, SurveyError
from survey.i18n import LANGUAGE_NAMES, use_language
from survey.i18n import gettext as _
from survey.questionnaires import services
from survey.questionnaires.models import Questionnaire
from survey.questionnaires.services import describe, version_of
from survey.questionnaires.translation import completeness, fill_cyrillic
from survey.questionnaires.types import field_name, get_type
from survey.responses import forms
from survey.responses.codes import codes_csv, issue_codes
from survey.strict_json import StrictJSONError, loads_strict

# Named apart from the JSON API's blueprint, which already holds the name "admin_questionnaires".
bp = Blueprint("admin_questionnaire_pages", __name__, url_prefix="/admin/questionnaires")

CODE = "<string(maxlength=63):code>"
VERSION = "<int(max=1000000):number>"
ACTIONS = ("publish", "open", "close", "reopen", "archive")
CODES_MAX = 100_000
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class UploadProblem(Exception):
    """The uploaded file could not be read as a definition at all (before any validation)."""


def xlsform_module() -> ModuleType | None:
    """The XLSForm converter if this installation has it (imported only when needed)."""
    if importlib.util.find_spec("survey.questionnaires.xlsform") is None:
        return None
    return importlib.import_module("survey.questionnaires.xlsform")


def legal_actions(questionnaire: Questionnaire) -> list[str]:
    """The lifecycle buttons to offer: exactly the moves the services would accept now."""
    status = questionnaire.status
    actions = []
    if services.draft_version(questionnaire) is not None and status != "archived":
        actions.append("publish")
    if status == "draft" and questionnaire.versions:
        actions.append("open")  # publishes the draft first if nothing was published yet
    if status == "open":
        actions.append("close")
    if status == "closed":
        actions += ["reopen", "archive"]
    return actions


# -- the list and new questionnaires ------------------------------------------------------------


@bp.get("/")
@require("questionnaires.read")
def index() -> str:
    """Every questionnaire: code, title, status, current and draft version, responses."""
    return _list_page()


def _list_page(problems: list[str] | None = None, problem_title: str | None = None) -> str:
    rows = [describe(q) for q in db.session.scalars(select(Questionnaire).order_by(Questionnaire.code))]
    return render_template(
        "admin/questionnaires.html",
        lang="en",
        languages=[],
        questionnaires=rows,
        problems=problems or [],
        problem_title=problem_title,
        xlsform=xlsform_module() is not None,
        max_upload=current_app.config["MAX_CONTENT_LENGTH"],
    )


@bp.post("/")
@require("questionnaires.write")
def create() -> str | tuple[str, int] | BaseResponse:
    """A new draft questionnaire from an uploaded definition (JSON, or an XLSForm where supported)."""
    try:
        questionnaire = services.create_questionnaire(_uploaded_definition(), actor=staff())
    except UploadProblem as problem:
        return _list_page([str(problem)], _("The file could not be read.")), 422
    except DefinitionInvalidError as error:
        return _list_page(_problems(error), error.detail), 422
    except QuestionnaireExistsError as error:
        return _list_page([error.detail], _("The questionnaire was not created.")), 409
    flash(_("Created the draft questionnaire %(code)s.", code=questionnaire.code), "info")
    return redirect(url_for(".detail", code=questionnaire.code), code=303)


def _uploaded_definition() -> Any:
    """The raw definition in the uploaded file; the services validate it."""
    upload = request.files.get("definition")
    if upload is None or not upload.filename:
        raise UploadProblem(_("Choose a file to upload."))
    data = upload.read()
    if data.startswith(b"PK\x03\x04") or upload.filename.lower().endswith(".xlsx"):
        module = xlsform_module()
        if module is None:
            raise UploadProblem(_("XLSForm files are not supported here; upload a JSON definition."))
        return module.definition_from_xlsform(data)
    try:
        return loads_strict(data.removeprefix(b"\xef\xbb\xbf"), current_app.config["JSON_MAX_DEPTH"])
    except StrictJSONError as error:
        raise UploadProblem(_("The file is not a JSON definition: %(reason)s", reason=error.description)) from None


def _problems(error: SurveyError) -> list[str]:
    found = (error.errors or {}).get("problems")
    return [str(p) for p in found] if isinstance(found, list) and found else [error.detail]


# -- one questionnaire --------------------------------------------------------------------------


@bp.get(f"/{CODE}")
@require("questionnaires.read")
def detail(code: str) -> str:
    """Versions with response counts, settings, lifecycle, translations, downloads and codes."""
    return _detail_page(services.get_questionnaire(code))


def _detail_page(
    questionnaire: Questionnaire,
    problems: list[str] | None = None,
    problem_title: str | None = None,
    settings_errors: dict[str, list[str]] | None = None,
    settings_form: dict[str, str] | None = None,
) -> str:
    view = describe(questionnaire)
    newest = questionnaire.versions[-1] if questionnaire.versions else None
    user = staff()
    if settings_form is None:
        settings_form = {
            "results_public": "yes" if questionnaire.results_public else "",
            "requires_code": "yes" if questionnaire.requires_code else "",
            "opens_on": questionnaire.opens_on.isoformat() if questionnaire.opens_on else "",
            "closes_on": questionnaire.closes_on.isoformat() if questionnaire.closes_on else "",
        }
    return render_template(
        "admin/questionnaire.html",
        lang="en",
        languages=[],
        q=view,
        definition=newest.definition if newest else {},
        languages_of=[(lang["code"], lang.get("name") or lang["code"]) for lang in _languages(newest)],
        actions=legal_actions(questionnaire),
        translations=completeness(newest.definition) if newest else {},
        newest_number=newest.number if newest else None,
        can_write=bool(user and user.can("questionnaires.write")),
        can_codes=bool(user and user.can("codes.write")),
        xlsform=xlsform_module() is not None,
        problems=problems or [],
        problem_title=problem_title,
        settings_errors=settings_errors or {},
        settings=settings_form,
        codes_max=CODES_MAX,
        max_upload=current_app.config["MAX_CONTENT_LENGTH"],
    )


def _languages(version: Any) -> list[dict[str, Any]]:
    if version is None:
        return []
    return [lang for lang in version.definition.get("languages", []) if isinstance(lang, dict) and "code" in lang]


@bp.post(f"/{CODE}/settings")
@require("questionnaires.write")
def settings(code: str) -> str | tuple[str, int] | BaseResponse:
    """Public results, participation codes required, and the dates between which it is open."""
    questionnaire = services.get_questionnaire(code)
    form = {
        "results_public": "yes" if request.form.get("results_public") == "yes" else "",
        "requires_code": "yes" if request.form.get("requires_code") == "yes" else "",
        "opens_on": request.form.get("opens_on", "").strip(),
        "closes_on": request.form.get("closes_on", "").strip(),
    }
    errors: dict[str, list[str]] = {}
    dates: dict[str, dt.date | None] = {}
    for name in ("opens_on", "closes_on"):
        try:
            dates[name] = dt.date.fromisoformat(form[name]) if form[name] else None
        except ValueError:
            errors[name] = [_("Give a date as YYYY-MM-DD, or leave it empty.")]
    if not errors and dates["opens_on"] and dates["closes_on"] and dates["closes_on"] < dates["opens_on"]:
        errors["closes_on"] = [_("The closing date must not be before the opening date.")]
    if errors:
        return _detail_page(questionnaire, settings_errors=errors, settings_form=form), 422
    wanted: dict[str, Any] = {
        "results_public": form["results_public"] == "yes",
        "requires_code": form["requires_code"] == "yes",
        **dates,
    }
    if services.change_settings(questionnaire, wanted, actor=staff()):
        flash(_("Saved the settings."), "info")
    else:
        flash(_("Nothing was changed."), "info")
    return redirect(url_for(".detail", code=code), code=303)


@bp.post(f"/{CODE}/<any({', '.join(ACTIONS)}):action>")
@require("questionnaires.write")
def lifecycle(code: str, action: str) -> str | tuple[str, int] | BaseResponse:
    """Publish the draft, open, close, reopen or archive; refused (409) unless legal right now."""
    questionnaire = services.get_questionnaire(code)
    try:
        if action not in legal_actions(questionnaire):
            raise IllegalTransitionError(
                _("This cannot be done while the questionnaire is %(status)s.", status=questionnaire.status)
            )
        if action == "publish":
            version = services.publish_draft(questionnaire, actor=staff())
            message = _("Published version %(number)d.", number=version.number)
        elif action in ("open", "reopen"):
            services.open_questionnaire(questionnaire, actor=staff())
            message = _("The questionnaire is open.")
        elif action == "close":
            services.close_questionnaire(questionnaire, actor=staff())
            message = _("The questionnaire is closed.")
        else:
            services.archive_questionnaire(questionnaire, actor=staff())
            message = _("The questionnaire is archived.")
    except DefinitionInvalidError as error:
        db.session.expire_all()  # the failed unit of work was rolled back: show what is stored
        return _detail_page(
            questionnaire, _problems(error), _("It cannot be published yet: %(detail)s", detail=error.detail)
        ), 422
    except IllegalTransitionError as error:
        db.session.expire_all()
        return _detail_page(questionnaire, [error.detail], _("That change of status is not allowed.")), 409
    flash(message, "info")
    return redirect(url_for(".detail", code=code), code=303)


@bp.post(f"/{CODE}/draft")
@require("questionnaires.write")
def upload_draft(code: str) -> str | tuple[str, int] | BaseResponse:
    """Replace the draft with an uploaded definition, or start a new draft version after the published ones."""
    questionnaire = services.get_questionnaire(code)
    try:
        version = services.save_draft(questionnaire, _uploaded_definition(), actor=staff())
    except UploadProblem as problem:
        return _detail_page(questionnaire, [str(problem)], _("The file could not be read.")), 422
    except DefinitionInvalidError as error:
        db.session.expire_all()
        return _detail_page(questionnaire, _problems(error), error.detail), 422
    flash(_("Saved the draft as version %(number)d.", number=version.number), "info")
    return redirect(url_for(".detail", code=code), code=303)


@bp.post(f"/{CODE}/draft/cyrillic")
@require("questionnaires.write")
def draft_cyrillic(code: str) -> str | tuple[str, int] | BaseResponse:
    """Fill the draft's empty Serbian Cyrillic texts from Serbian Latin; existing Cyrillic is kept."""
    questionnaire = services.get_questionnaire(code)
    draft = services.draft_version(questionnaire)
    if draft is None:
        return _detail_page(questionnaire, [_("There is no draft version; upload one first.")]), 409
    definition, filled = fill_cyrillic(draft.definition)
    if filled:
        services.save_draft(questionnaire, definition, actor=staff())
    flash(_("Filled %(count)d Serbian Cyrillic texts from Serbian Latin.", count=filled), "info")
    return redirect(url_for(".detail", code=code), code=303)


@bp.post(f"/{CODE}/codes")
@require("codes.write")
def codes(code: str) -> str | tuple[str, int] | Response:
    """Make one-time participation codes, downloaded as CSV this once (only their hashes are kept)."""
    questionnaire = services.get_questionnaire(code)
    raw = request.form.get("count", "").strip()
    count = int(raw) if raw.isdigit() and len(raw) <= 6 else 0
    if not 1 <= count <= CODES_MAX:
        message = _("Give a number of codes from 1 to %(max)d.", max=CODES_MAX)
        return _detail_page(questionnaire, [message], _("No codes were made.")), 422
    made = issue_codes(questionnaire, count, actor=staff())
    return Response(
        codes_csv(made),
        mimetype="text/csv",
        headers={"Content-Disposition": f"attachment; filename={questionnaire.code}-codes.csv"},
    )


# -- versions: downloads and the preview --------------------------------------------------------


@bp.get(f"/{CODE}/versions/{VERSION}.json")
@require("questionnaires.read")
def version_json(code: str, number: int) -> Response:
    """One version's definition as a JSON file (DESIGN §4), for editing and uploading again."""
    version = version_of(services.get_questionnaire(code), number)
    body = json.dumps(version.definition, ensure_ascii=False, indent=2) + "\n"
    return Response(
        body,
        mimetype="application/json",
        headers={"Content-Disposition": f"attachment; filename={code}-v{number}.json"},
    )


@bp.get(f"/{CODE}/versions/{VERSION}.xlsx")
@require("questionnaires.read")
def version_xlsform(code: str, number: int) -> Response:
    """One version's definition as an XLSForm workbook (where this installation has the converter)."""
    version = version_of(services.get_questionnaire(code), number)
    module = xlsform_module()
    if module is None:
        raise NotFound()
    return Response(
        module.xlsform_from_definition(version.definition),
        mimetype=XLSX_MIME,
        headers={"Content-Disposition": f"attachment; filename={code}-v{number}.xlsx"},
    )


@bp.get(f"/{CODE}/versions/{VERSION}/preview")
@require("questionnaires.read")
def preview(code: str, number: int) -> str:
    """A version as respondents see it, page by page, in any of its languages; read-only, never stored."""
    questionnaire = services.get_questionnaire(code)
    version = version_of(questionnaire, number)
    definition = version.definition
    tags = [lang["code"] for lang in _languages(version)]
    language = use_language(tags, request.args.get("lang"), definition.get("default_language", "en"))
    pages = forms.pages_of(definition)
    index = min(max(request.args.get("page", 0, type=int) or 0, 0), len(pages) - 1)
    page = pages[index]
    questions = [
        {
            "spec": question,
            "kind": get_type(question["type"]),
            "visible": True,
            "options": _choices(question),
            "rows": question.get("rows", []),
            "value": None,
            "errors": None,
            "name": field_name(question),
        }
        for question in page.questions
    ]
    return render_template(
        "admin/preview.html",
        lang=language,
        languages=[],
        preview_languages=[(tag, LANGUAGE_NAMES.get(tag, tag)) for tag in tags],
        questionnaire=questionnaire,
        version=version,
        definition=definition,
        page=page,
        page_count=len(pages),
        questions=questions,
        conditional=[q["spec"]["code"] for q in questions if q["spec"].get("display_if")],
        shuffled=[
            q["spec"]["code"]
            for q in questions
            if q["spec"].get("randomize_options") or q["spec"].get("randomize_rows")
        ],
        field_name=field_name,
    )


def _choices(question: dict[str, Any]) -> list[dict[str, Any]]:
    """The answer choices in definition order (the form shuffles them per respondent where asked)."""
    if "options" in question:
        return question["options"]
    scale = question.get("scale")
    if scale:
        return scale["points"] + scale.get("non_substantive", [])
    return question.get("non_substantive", [])
