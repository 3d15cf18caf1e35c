"""The submission service: the one way a response enters the database, whatever the channel.

Semantics (ODK's model, DESIGN §5): validation against the exact published version, then one
transaction that inserts the response with ``ON CONFLICT DO NOTHING`` on (questionnaire,
hash of submission_id) and its answers. The database, not a prior look-up, decides who wins a race
between two identical submissions, so concurrent retries store exactly one response. A losing or
repeated submission is compared with the stored one by the hash of its canonical payload: the same
payload is a replay (acknowledged again, nothing stored), a different one a conflict.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

import marshmallow as ma
from sqlalchemy import insert, select
from sqlalchemy.dialects import postgresql, sqlite

from survey.db import db, unit_of_work
from survey.errors import (
    QuestionnaireNotOpenError,
    SubmissionConflictError,
    SubmissionInvalidError,
    VersionNotFoundError,
)
from survey.i18n import gettext
from survey.questionnaires.definition import canonical_json
from survey.questionnaires.models import Questionnaire
from survey.questionnaires.services import (
    VersionCatalog,
    get_questionnaire,
    published_catalog,
    today,
)
from survey.questionnaires.types import get_type
from survey.responses import codes
from survey.responses.models import Answer, Response
from survey.responses.schemas import SubmissionSchema, load_answers


@dataclass(frozen=True)
class SubmissionResult:
    created: bool  # False: a replay of a response stored earlier
    receipt: dict[str, Any]


def submit_response(code: str, payload: Any, channel: str) -> SubmissionResult:
    """Validate and store one response, exactly once per ``submission_id``."""
    questionnaire = get_questionnaire(code)
    status = questionnaire.effective_status(today())
    if status != "open":
        raise QuestionnaireNotOpenError(status)
    catalog, submission = _validate(questionnaire, payload)

    submission_id = submission["submission_id"].lower()
    submission_key = _sha256(submission_id)
    payload_hash = _sha256(
        canonical_json(
            {"version": catalog.number, "language": submission["language"], "answers": submission["answers"]}
        )
    )
    with unit_of_work():
        response_id = db.session.execute(
            _insert_ignoring_duplicates(
                {
                    "id": uuid.uuid4(),
                    "questionnaire_id": questionnaire.id,
                    "version_id": catalog.version_id,
                    "language": submission["language"],
                    "channel": channel,
                    "submitted_on": today(),
                    "submission_key": submission_key,
                    "payload_hash": payload_hash,
                }
            )
        ).scalar()
        if response_id is not None:
            # The code is spent only by a new response: a replay of a stored one must not need it again.
            if questionnaire.requires_code and not codes.spend(questionnaire, submission["participation_code"]):
                raise SubmissionInvalidError(
                    "The submission has invalid fields.", {"participation_code": [codes.used_message()]}
                )
            rows = _answer_rows(catalog, response_id, submission["answers"])
            if rows:  # one Core executemany (one INSERT … VALUES round trip), not the ORM bulk path's several
                db.session.execute(insert(Answer.__table__), rows)
            return SubmissionResult(True, _receipt(submission_id, catalog, today()))
        stored = db.session.execute(
            select(Response.payload_hash, Response.submitted_on, Response.version_id).where(
                Response.questionnaire_id == questionnaire.id, Response.submission_key == submission_key
            )
        ).one()
    if stored.payload_hash != payload_hash:
        raise SubmissionConflictError(
            "A different response was already stored with this submission_id; it was not changed."
        )
    return SubmissionResult(False, _receipt(submission_id, catalog, stored.submitted_on))


def _validate(questionnaire: Questionnaire, payload: Any) -> tuple[VersionCatalog, dict[str, Any]]:
    """Check the envelope and every answer; collect all problems before raising."""
    if not isinstance(payload, dict):
        raise SubmissionInvalidError("The body must be a JSON object.", {"_body": ["Must be an object."]})
    errors: dict[str, Any] = {}
    try:
        submission = SubmissionSchema().load(payload)
    except ma.ValidationError as error:
        errors.update(error.messages)  # type: ignore[arg-type]
        submission = error.valid_data or {}  # type: ignore[assignment]

    catalog = None
    if "version" not in errors:
        try:
            catalog = published_catalog(questionnaire, submission.get("version"))
        except VersionNotFoundError:
            errors["version"] = ["Not a published version of this questionnaire."]
    if questionnaire.requires_code and "participation_code" not in errors and not submission.get("participation_code"):
        errors["participation_code"] = [gettext("A participation code is required.")]
    if catalog is not None:
        language = submission.get("language")
        if language is not None and language not in catalog.languages:
            errors["language"] = [f"Must be one of: {', '.join(catalog.languages)}."]
        if isinstance(submission.get("answers"), dict):
            try:
                submission["answers"] = load_answers(catalog.answer_schema, submission["answers"])
            except ma.ValidationError as error:
                errors["answers"] = error.messages
    if errors or catalog is None:
        raise SubmissionInvalidError("The submission has invalid fields.", errors)
    return catalog, submission


def _insert_ignoring_duplicates(values: dict[str, Any]) -> Any:
    dialect = db.session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    return (
        module.insert(Response)
        .values(values)
        .on_conflict_do_nothing(index_elements=["questionnaire_id", "submission_key"])
        .returning(Response.id)
    )


def _answer_rows(catalog: VersionCatalog, response_id: uuid.UUID, answers: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for code, value in answers.items():
        question = catalog.questions[code]
        question_id = catalog.question_ids[code]
        for seq, stored in enumerate(get_type(question["type"]).storage(question, value)):
            rows.append(
                {
                    "response_id": response_id,
                    "question_id": question_id,
                    "seq": seq,
                    "item_id": catalog.item_ids[(code, stored.item)] if stored.item else None,
                    "option_id": catalog.option_ids[(code, stored.option)] if stored.option else None,
                    "number": stored.number,
                    "text": stored.text,
                    "rank": stored.rank,
                }
            )
    return rows


def _receipt(submission_id: str, catalog: VersionCatalog, day: dt.date) -> dict[str, Any]:
    return {
        "submission_id": submission_id,
        "questionnaire": catalog.questionnaire_code,
        "version": catalog.number,
        "received_on": day,
    }


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
