"""Where corpus payloads are put: questionnaires shaped for the corpus, JSON sent byte-exact, staff browsers
and XLSForm workbooks carrying a payload."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any
from xml.sax.saxutils import escape

from flask import Flask
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from survey.accounts.models import ApiToken, AuditEvent, User
from survey.db import db
from survey.questionnaires.models import Questionnaire, QuestionnaireVersion
from survey.questionnaires.xlsform import xlsform_from_definition
from survey.responses.models import Answer, Response
from tests.admin.conftest import PageClient, browser
from tests.admin.pages import log_in
from tests.corpus.corpus import in_every_language
from tests.factories import LANGS, t

PLACEHOLDER = "CORPUSPLACEHOLDER"
JSON_TYPE = "application/json"


def corpus_definition(code: str, text: str | None = None) -> dict[str, Any]:
    """A questionnaire for the corpus: consent, a choice, two free texts and two numbers.

    With ``text``, every staff-authored text (title, description, section title and description, consent
    and question text, help, option labels) and the authoring metadata carry it.
    """

    def tx(default: str) -> dict[str, str]:
        return in_every_language(text) if text is not None else t(default)

    definition: dict[str, Any] = {
        "code": code,
        "default_language": "en",
        "languages": [{"code": lang, "name": lang} for lang in LANGS],
        "title": tx("Corpus"),
        "description": tx("About this questionnaire"),
        "consent": {
            "code": "consent",
            "type": "single_choice",
            "required": True,
            "text": tx("Do you agree?"),
            "options": [{"code": "yes", "label": tx("Yes")}, {"code": "no", "label": t("No")}],
            "terminate_if": {"question": "consent", "operator": "in", "values": ["no"]},
        },
        "sections": [
            {
                "code": "main",
                "title": tx("Main"),
                "description": tx("The main part"),
                "questions": [
                    {
                        "code": "choice",
                        "type": "single_choice",
                        "demographic": True,
                        "text": tx("Choose"),
                        "help": tx("Pick one"),
                        "options": [{"code": "a", "label": tx("A")}, {"code": "b", "label": t("B")}],
                    },
                    {"code": "free", "type": "text", "multiline": True, "max_length": 5000, "text": t("Free")},
                    {"code": "line", "type": "text", "max_length": 5000, "text": t("One line")},
                    {"code": "amount", "type": "number", "min": -100, "max": 100, "text": t("Amount")},
                    {"code": "row", "type": "number", "integer": True, "min": 0, "max": 100000, "text": t("Row")},
                ],
            }
        ],
    }
    if text is not None:
        definition["sections"][0]["questions"][0]["op_ed_excerpt"] = text
        definition["source_document"] = {"title": text}
    return definition


def many_texts_definition(code: str, texts: list[str]) -> dict[str, Any]:
    """One single-choice question per text (the text is its wording and its first option's label), after a
    demographic question, so that results, breakdowns and exports show every text at once."""
    questions: list[dict[str, Any]] = [
        {
            "code": "group",
            "type": "single_choice",
            "demographic": True,
            "text": t("Group"),
            "options": [{"code": "x", "label": t("X")}, {"code": "y", "label": t("Y")}],
        }
    ]
    for index, text in enumerate(texts):
        questions.append(
            {
                "code": f"q{index}",
                "type": "single_choice",
                "text": in_every_language(text),
                "options": [{"code": "a", "label": in_every_language(text)}, {"code": "b", "label": t("B")}],
            }
        )
    return {
        "code": code,
        "default_language": "en",
        "languages": [{"code": lang, "name": lang} for lang in LANGS],
        "title": t("Many texts"),
        "sections": [{"code": "main", "title": t("Main"), "questions": questions}],
    }


def send(client: Any, method: str, url: str, body: Any, headers: dict[str, str] | None = None, **kwargs: Any) -> Any:
    """Send ``body`` as JSON exactly: a str is sent as it is, anything else JSON-encoded with \\u escapes
    (so lone surrogates travel as the JSON escape a hostile client would send)."""
    data = body if isinstance(body, str | bytes) else json.dumps(body, ensure_ascii=True)
    return client.open(url, method=method, data=data, content_type=JSON_TYPE, headers=headers or {}, **kwargs)


def post_file(client: Any, url: str, token: str, content: bytes, filename: str) -> Any:
    """POST a file field as a browser's multipart form, encoded in memory (the test client would spool a large
    body to a temporary file that it never closes)."""
    fields = {"csrf_token": token, "definition": FileStorage(io.BytesIO(content), filename)}
    boundary, body = encode_multipart(fields)
    return client.post(url, data=body, content_type=f"multipart/form-data; boundary={boundary}")


def staff_browser(app: Flask, user: User) -> tuple[PageClient, str]:
    """A logged-in staff browser and a CSRF token of its session."""
    client = browser(app)
    token = log_in(client, user)
    return client, token


def xlsform_with(text: str) -> bytes:
    """An XLSForm workbook of :func:`corpus_definition` whose texts are ``text``, written into the workbook's
    XML as a hostile file would carry it (control characters in OOXML's ``_xHHHH_`` form)."""
    workbook = xlsform_from_definition(corpus_definition("corpus_x", PLACEHOLDER))
    quoted = f'"{PLACEHOLDER}"'.encode()  # inside the metadata sheet's JSON cell
    return replace_in_parts(
        workbook, {quoted: _ooxml_text(json.dumps(text, ensure_ascii=False)), PLACEHOLDER.encode(): _ooxml_text(text)}
    )


def _ooxml_text(text: str) -> bytes:
    """Text as a hostile workbook carries it: markup escaped, a carriage return as a character reference (an XML
    parser would turn a raw one into a line feed), every other control character raw (XML cannot hold it)."""
    return escape(text).replace("\r", "&#13;").encode("utf-8", "surrogatepass")


def replace_in_parts(workbook: bytes, replacements: dict[bytes, bytes], extra: dict[str, bytes] | None = None) -> bytes:
    """The workbook with byte replacements in every XML part, and extra parts added."""
    source = zipfile.ZipFile(io.BytesIO(workbook))
    output = io.BytesIO()
    with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as target:
        for member in source.infolist():
            content = source.read(member)
            for old, new in replacements.items():
                content = content.replace(old, new)
            target.writestr(member.filename, content)
        for name, content in (extra or {}).items():
            target.writestr(name, content)
    return output.getvalue()


def counts() -> dict[str, int]:
    """Rows of every table a refused request must leave alone."""
    db.session.expire_all()
    return {
        model.__tablename__: db.session.scalar(select(func.count()).select_from(model)) or 0
        for model in (Questionnaire, QuestionnaireVersion, Response, Answer, User, ApiToken, AuditEvent)
    }


def snapshot_of_settings() -> list[tuple[Any, ...]]:
    db.session.expire_all()
    return [
        (q.code, q.status, q.results_public, q.requires_code, q.opens_on, q.closes_on)
        for q in db.session.scalars(select(Questionnaire).order_by(Questionnaire.code))
    ]


def users_state() -> list[tuple[Any, ...]]:
    db.session.expire_all()
    return [(u.email, u.name, u.role, u.active) for u in db.session.scalars(select(User).order_by(User.id))]
