"""The submission service: the one way a response enters the database, whatever the channel.

Semantics (ODK's model, DESIGN §5): validation against the exact published version, then one
transaction that inserts the response with ``ON CONFLICT DO NOTHING`` on (questionnaire,
hash of submission_id) and its answers. The database, not a prior look-up, decides who wins a race
between two identical submissions, so concurrent retries store exactly one response. A losing or
repeated submission is compared with the stored one by the hash of its canonical payload: the same
payload is a replay (acknowledged again, nothing stored), a different one a conflict.

This is the hot path of a survey that goes viral (issue 7, bench/): per request it reads one row
(the questionnaire's settings and version id), validates with schema instances built once per
version, and stores the response and its answers with statements compiled once — on PostgreSQL as a
single statement, the form the ceilings report measured as the database's own limit.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import operator
import uuid
from dataclasses import dataclass
from typing import Any

import marshmallow as ma
from sqlalchemy import Connection, Date, bindparam, select, text
from sqlalchemy.dialects.postgresql import psycopg

from survey.db import core_transaction, db, driver_cursor
from survey.errors import (
    QuestionnaireNotOpenError,
    SubmissionConflictError,
    SubmissionInvalidError,
)
from survey.i18n import gettext
from survey.questionnaires.definition import canonical_json
from survey.questionnaires.services import (
    SubmissionTarget,
    VersionCatalog,
    catalog_by_id,
    submission_target,
    today,
)
from survey.questionnaires.types import get_type
from survey.responses import codes
from survey.responses.models import Response
from survey.responses.profiles import profile_of
from survey.responses.schemas import SUBMISSION_SCHEMA, load_answers

MAX_VERSION = 2**31 - 1


@dataclass(frozen=True)
class SubmissionResult:
    created: bool  # False: a replay of a response stored earlier
    receipt: dict[str, Any]


def submit_response(code: str, payload: Any, channel: str, fresh: bool = False) -> SubmissionResult:
    """Validate and store one response, exactly once per ``submission_id``.

    ``fresh``: read the questionnaire anew instead of this worker's recent copy (done, once, when
    the insert found that the questionnaire changed since that copy was read).
    """
    number = _named_version(payload)
    target = submission_target(code, number, fresh=fresh)
    if target.status != "open":
        raise QuestionnaireNotOpenError(target.status)
    catalog, submission = _validate(target, payload)

    submission_id = submission["submission_id"].lower()
    submission_key = _sha256(submission_id)
    payload_hash = _sha256(
        canonical_json(
            {"version": catalog.number, "language": submission["language"], "answers": submission["answers"]}
        )
    )
    response = {
        "id": uuid.uuid4(),
        "questionnaire_id": target.id,
        "version_id": catalog.version_id,
        "language": submission["language"],
        "channel": channel,
        "submitted_on": today(),
        "submission_key": submission_key,
        "payload_hash": payload_hash,
    }
    answers = _answer_rows(catalog, submission["answers"])
    profile = profile_of(catalog.breakdowns, submission["answers"])
    # On PostgreSQL storing is one statement; spending a participation code with it makes two.
    with core_transaction(single_statement=not target.requires_code) as connection:
        if store_response(connection, response, answers, profile, target):
            # The code is spent only by a new response: a replay of a stored one must not need it again.
            # Refusing it here rolls back the response and answers just inserted.
            if target.requires_code and not codes.spend(connection, target, submission["participation_code"]):
                raise SubmissionInvalidError(
                    "The submission has invalid fields.", {"participation_code": [codes.used_message()]}
                )
            return SubmissionResult(True, _receipt(submission_id, catalog, response["submitted_on"]))

    # Nothing was stored: the submission_id is taken, or the questionnaire is no longer as read.
    current = target if fresh else submission_target(code, number, fresh=True)
    if current != target:
        return submit_response(code, payload, channel, fresh=True)
    stored = db.session.execute(_STORED, {"questionnaire_id": target.id, "submission_key": submission_key}).first()
    if stored is None:  # it changed again between the insert and the read just made
        raise QuestionnaireNotOpenError("closed")
    if stored.payload_hash != payload_hash:
        raise SubmissionConflictError(
            "A different response was already stored with this submission_id; it was not changed."
        )
    return SubmissionResult(False, _receipt(submission_id, catalog, stored.submitted_on))


def _named_version(payload: Any) -> int | None:
    """The version the payload names, if it names a plausible one (the schema reports anything else)."""
    number = payload.get("version") if isinstance(payload, dict) else None
    return number if type(number) is int and 1 <= number <= MAX_VERSION else None


def _validate(target: SubmissionTarget, payload: Any) -> tuple[VersionCatalog, dict[str, Any]]:
    """Check the envelope and every answer; collect all problems before raising."""
    if not isinstance(payload, dict):
        raise SubmissionInvalidError("The body must be a JSON object.", {"_body": ["Must be an object."]})
    errors: dict[str, Any] = {}
    try:
        submission = SUBMISSION_SCHEMA.load(payload)
    except ma.ValidationError as error:
        errors.update(error.messages)  # type: ignore[arg-type]
        submission = error.valid_data or {}  # type: ignore[assignment]

    catalog = None
    if "version" not in errors:
        if target.version_id is None:
            errors["version"] = ["Not a published version of this questionnaire."]
        else:
            catalog = catalog_by_id(target.version_id)
    if target.requires_code and "participation_code" not in errors and not submission.get("participation_code"):
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


def store_response(
    connection: Connection,
    response: dict[str, Any],
    answers: list[dict[str, Any]],
    profile: tuple[int, str],
    target: SubmissionTarget,
) -> bool:
    """Insert the response, its answer profile (if new) and its answers; True when stored.

    Nothing is written (False) when an earlier response holds (questionnaire, submission_key), or
    when the questionnaire is no longer open with the settings in ``target`` (which may be a
    worker's recent copy): the database checks both in the insert itself. On PostgreSQL one
    statement inserts all three (the answers travel as one JSON array); SQLite, which has no
    data-modifying CTE, takes the same inserts as three statements in-process.
    """
    parameters = {
        **response,
        "requires_code": target.requires_code,
        "profile_id": profile[0],
        "breakdowns": profile[1],
    }
    # On both databases the driver's own cursor runs statements compiled once: no execution context,
    # type processing or result objects per call (issue 7: 0.2 ms of CPU per submission on SQLite,
    # where it is spent inside the writers' turn; 9 % of the app's instructions on PostgreSQL).
    if connection.dialect.name == "postgresql":
        parameters["answers"] = json.dumps(answers, ensure_ascii=False, allow_nan=False)
        with driver_cursor(connection) as cursor:
            return cursor.execute(STORE_POSTGRESQL_SQL, parameters).fetchone() is not None
    # SQLite takes the values as it stores them.
    parameters.update(id=response["id"].hex, submitted_on=response["submitted_on"].isoformat())
    rows = [(parameters["id"], *_answer_values(row), profile[0]) for row in answers]
    with driver_cursor(connection) as cursor:
        if cursor.execute(RESPONSE_INSERT_SQL, parameters).fetchone() is None:
            return False
        cursor.execute(PROFILE_INSERT_SQL, parameters)
        if rows:
            cursor.executemany(SQLITE_ANSWERS_INSERT_SQL, rows)
    return True


# The response, if its questionnaire is (still) open with the same settings and no response holds
# its submission_key yet. ``submitted_on`` is today, so the dates are checked as effective_status does.
RESPONSE_INSERT_SQL = """
    INSERT INTO responses
        (id, questionnaire_id, version_id, language, channel, submitted_on, submission_key, payload_hash)
    SELECT :id, :questionnaire_id, :version_id, :language, :channel, :submitted_on, :submission_key, :payload_hash
    WHERE EXISTS (
        SELECT 1 FROM questionnaires q
        WHERE q.id = :questionnaire_id AND q.status = 'open' AND q.requires_code = :requires_code
            AND (q.opens_on IS NULL OR q.opens_on <= :submitted_on)
            AND (q.closes_on IS NULL OR q.closes_on >= :submitted_on)
    )
    ON CONFLICT (questionnaire_id, submission_key) DO NOTHING
    RETURNING id
"""
_TYPED = (bindparam("id", type_=Response.__table__.c.id.type), bindparam("submitted_on", type_=Date))
PROFILE_INSERT_SQL = (
    "INSERT INTO answer_profiles (questionnaire_id, id, breakdowns) "
    "VALUES (:questionnaire_id, :profile_id, :breakdowns) ON CONFLICT DO NOTHING"
)
ANSWER_COLUMNS = ("question_id", "seq", "item_id", "option_id", "number", "text", "rank")
_answer_values = operator.itemgetter(*ANSWER_COLUMNS)  # an answer row's values, in that order
SQLITE_ANSWERS_INSERT_SQL = (
    f"INSERT INTO answers (response_id, {', '.join(ANSWER_COLUMNS)}, profile_id) "  # noqa: S608 - constants
    f"VALUES ({', '.join('?' for _ in range(len(ANSWER_COLUMNS) + 2))})"
)
# One round trip: the profile and answers are inserted only if the response was (``r`` is empty otherwise).
# Compiled once for psycopg's cursor (placeholders, and casts for the typed values).
STORE_POSTGRESQL_SQL = (
    text(
        "WITH r AS ("  # noqa: S608 - constants only; every value is a bound parameter
        + RESPONSE_INSERT_SQL
        + """), p AS (
        INSERT INTO answer_profiles (questionnaire_id, id, breakdowns)
        SELECT :questionnaire_id, :profile_id, CAST(:breakdowns AS json) FROM r
        ON CONFLICT DO NOTHING
    ), a AS (
        INSERT INTO answers (response_id, question_id, seq, item_id, option_id, number, text, rank, profile_id)
        SELECT r.id, a.*, :profile_id FROM r, jsonb_to_recordset(CAST(:answers AS jsonb)) AS a(
            question_id integer, seq smallint, item_id integer, option_id integer,
            number double precision, text text, rank smallint
        )
    )
    SELECT id FROM r
    """
    )
    .bindparams(*_TYPED)
    .compile(dialect=psycopg.dialect())
    .string
)

_STORED = select(Response.__table__.c.payload_hash, Response.__table__.c.submitted_on).where(
    Response.__table__.c.questionnaire_id == bindparam("questionnaire_id"),
    Response.__table__.c.submission_key == bindparam("submission_key"),
)


def _answer_rows(catalog: VersionCatalog, answers: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for code, value in answers.items():
        question = catalog.questions[code]
        question_id = catalog.question_ids[code]
        for seq, stored in enumerate(get_type(question["type"]).storage(question, value)):
            rows.append(
                {
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
