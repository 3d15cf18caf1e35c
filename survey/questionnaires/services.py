"""Questionnaire services: look-ups, versions, publishing, seeding, and the per-version catalog.

A published version never changes, so everything derived from it (the answer schema, the ids of its
questions and options) is compiled once per process into a :class:`VersionCatalog` and cached.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import current_app, has_app_context
from sqlalchemy import bindparam, event, func, select
from sqlalchemy.orm import Session

from survey.accounts.models import User
from survey.accounts.services import record
from survey.db import db, unit_of_work
from survey.errors import (
    DefinitionInvalidError,
    IllegalTransitionError,
    NotFoundError,
    QuestionnaireExistsError,
    QuestionnaireNotFoundError,
    SettingsInvalidError,
    VersionNotFoundError,
)
from survey.questionnaires.definition import breakdown_codes, checksum, iter_questions, validate_definition
from survey.questionnaires.models import (
    Option,
    Question,
    QuestionItem,
    Questionnaire,
    QuestionnaireVersion,
    effective_status,
)
from survey.questionnaires.types import get_type
from survey.responses.models import Response as StoredResponse

SHIPPED_DEFINITIONS = Path(__file__).parent / "definitions"
SETTINGS = ("results_public", "requires_code", "opens_on", "closes_on")


def today() -> dt.date:
    """The current UTC day: the only clock precision this service records."""
    return dt.datetime.now(dt.UTC).date()


def get_questionnaire(code: str) -> Questionnaire:
    questionnaire = db.session.scalar(select(Questionnaire).where(Questionnaire.code == code))
    if questionnaire is None:
        raise QuestionnaireNotFoundError(f"There is no questionnaire {code!r}.")
    return questionnaire


def list_open_questionnaires() -> list[tuple[Questionnaire, QuestionnaireVersion]]:
    """Open questionnaires (by their dates too) with their current published version."""
    day = today()
    rows = db.session.scalars(select(Questionnaire).where(Questionnaire.status == "open").order_by(Questionnaire.code))
    result = []
    for questionnaire in rows:
        version = current_version(questionnaire)
        if version is not None and questionnaire.effective_status(day) == "open":
            result.append((questionnaire, version))
    return result


def newest_version_id(questionnaire: Questionnaire) -> int | None:
    """The id of the newest published version (its definition is not read), or None."""
    return db.session.scalar(_NEWEST_VERSION_ID, {"questionnaire_id": questionnaire.id})


def current_version(questionnaire: Questionnaire) -> QuestionnaireVersion | None:
    """The newest published version, or None if nothing was published yet."""
    return db.session.scalar(
        select(QuestionnaireVersion)
        .where(
            QuestionnaireVersion.questionnaire_id == questionnaire.id,
            QuestionnaireVersion.published_on.is_not(None),
        )
        .order_by(QuestionnaireVersion.number.desc())
        .limit(1)
    )


def published_version(questionnaire: Questionnaire, number: int | None = None) -> QuestionnaireVersion:
    """The version a submission answers: the one it names, else the current one."""
    if number is None:
        version = current_version(questionnaire)
    else:
        version = db.session.scalar(
            select(QuestionnaireVersion).where(
                QuestionnaireVersion.questionnaire_id == questionnaire.id,
                QuestionnaireVersion.number == number,
                QuestionnaireVersion.published_on.is_not(None),
            )
        )
    if version is None:
        raise VersionNotFoundError(f"Version {number} of {questionnaire.code!r} is not published.")
    return version


def create_questionnaire(raw_definition: Any, results_public: bool = False, actor: User | None = None) -> Questionnaire:
    """Create a draft questionnaire whose version 1 holds the given definition."""
    definition = validate_definition(raw_definition, require_complete=False)
    with unit_of_work():
        if db.session.scalar(select(Questionnaire.id).where(Questionnaire.code == definition["code"])):
            raise QuestionnaireExistsError(f"A questionnaire {definition['code']!r} exists; add a version to it.")
        questionnaire = Questionnaire(
            code=definition["code"],
            status="draft",
            default_language=definition["default_language"],
            results_public=results_public,
        )
        db.session.add(questionnaire)
        add_version(questionnaire, definition)
        record(actor, "questionnaire.create", "questionnaire", questionnaire.code)
    return questionnaire


def open_questionnaire(questionnaire: Questionnaire, actor: User | None = None) -> Questionnaire:
    """Open (or reopen) for responses; a questionnaire never published has its draft published first."""
    with unit_of_work():
        if not any(v.is_published for v in questionnaire.versions) and questionnaire.versions:
            publish_version(questionnaire.versions[-1], actor)
        questionnaire.open()
        record(actor, "questionnaire.open", "questionnaire", questionnaire.code)
    return questionnaire


def close_questionnaire(questionnaire: Questionnaire, actor: User | None = None) -> Questionnaire:
    with unit_of_work():
        questionnaire.close()
        record(actor, "questionnaire.close", "questionnaire", questionnaire.code)
    return questionnaire


def archive_questionnaire(questionnaire: Questionnaire, actor: User | None = None) -> Questionnaire:
    with unit_of_work():
        questionnaire.archive()
        record(actor, "questionnaire.archive", "questionnaire", questionnaire.code)
    return questionnaire


def draft_version(questionnaire: Questionnaire) -> QuestionnaireVersion | None:
    latest = questionnaire.versions[-1] if questionnaire.versions else None
    return latest if latest is not None and not latest.is_published else None


def save_draft(questionnaire: Questionnaire, raw_definition: Any, actor: User | None = None) -> QuestionnaireVersion:
    """Replace the draft version's definition, or start a new draft after the published ones.

    Published versions are never touched: editing an open questionnaire makes a new version, and
    every response keeps the version it answered.
    """
    definition = validate_definition(raw_definition, require_complete=False)
    if definition["code"] != questionnaire.code:
        raise DefinitionInvalidError(
            "The definition is for another questionnaire.", {"problems": [f"code: must be {questionnaire.code!r}"]}
        )
    with unit_of_work():
        draft = draft_version(questionnaire)
        if draft is None:
            draft = add_version(questionnaire, definition)
        else:
            draft.definition = definition
            draft.checksum = checksum(definition)
        questionnaire.default_language = definition["default_language"]
        record(actor, "questionnaire.draft", "questionnaire", questionnaire.code, version=draft.number)
    return draft


def publish_draft(questionnaire: Questionnaire, actor: User | None = None) -> QuestionnaireVersion:
    """Publish the draft version: complete in every language, then immutable and (if open) current."""
    draft = draft_version(questionnaire)
    if draft is None:
        raise IllegalTransitionError("There is no draft version to publish.")
    return publish_version(draft, actor)


def add_version(questionnaire: Questionnaire, definition: dict[str, Any]) -> QuestionnaireVersion:
    """Add a draft version holding an already validated definition."""
    with unit_of_work():
        number = 1 + max((v.number for v in questionnaire.versions), default=0)
        version = QuestionnaireVersion(
            questionnaire=questionnaire, number=number, definition=definition, checksum=checksum(definition)
        )
        db.session.add(version)
        db.session.flush()
    return version


def publish_version(version: QuestionnaireVersion, actor: User | None = None) -> QuestionnaireVersion:
    """Freeze a version: check it is complete in every language and write its normalised rows."""
    with unit_of_work():
        definition = validate_definition(version.definition, require_complete=True)
        _check_breakdowns_were_always_breakdowns(version, breakdown_codes(definition))
        for position, (section, spec) in enumerate(iter_questions(definition)):
            kind = get_type(spec["type"])
            question = Question(
                code=spec["code"],
                type=spec["type"],
                section=section,
                position=position,
                required=spec["required"],
                demographic=spec["demographic"],
            )
            question.options = [
                Option(code=o.code, position=i, value=o.value, non_substantive=o.non_substantive)
                for i, o in enumerate(kind.options(spec))
            ]
            question.items = [QuestionItem(code=c, position=i) for i, c in enumerate(kind.items(spec))]
            version.questions.append(question)
        version.published_on = today()
        db.session.flush()
        record(actor, "questionnaire.publish", "questionnaire", definition["code"], version=version.number)
    return version


def _check_breakdowns_were_always_breakdowns(version: QuestionnaireVersion, codes: tuple[str, ...]) -> None:
    """Refuse a breakdown question that an earlier published version asked as an ordinary question.

    A response's breakdown answers are filed with it when it arrives (its profile,
    ``responses.profiles``); the responses to that earlier version have none for this question.
    """
    if not codes:
        return
    earlier = db.session.scalars(
        select(Question.code)
        .join(QuestionnaireVersion, Question.version_id == QuestionnaireVersion.id)
        .where(
            QuestionnaireVersion.questionnaire_id == version.questionnaire_id,
            QuestionnaireVersion.id != version.id,
            QuestionnaireVersion.published_on.is_not(None),
            Question.code.in_(codes),
            Question.demographic.is_(False),
        )
        .distinct()
        .order_by(Question.code)
    ).all()
    if earlier:
        raise DefinitionInvalidError(
            "A question asked without the demographic flag cannot become a breakdown.",
            {
                "problems": [
                    f"questions.{code}.demographic: an earlier version asked {code!r} as an ordinary question; "
                    "give the breakdown question a new code"
                    for code in earlier
                ]
            },
        )


def change_settings(
    questionnaire: Questionnaire, settings: dict[str, Any], actor: User | None = None
) -> dict[str, Any]:
    """Apply the settings staff may change; returns what actually changed (and audits it)."""
    wanted = {name: settings[name] for name in SETTINGS if name in settings}
    opens, closes = wanted.get("opens_on", questionnaire.opens_on), wanted.get("closes_on", questionnaire.closes_on)
    if opens and closes and closes < opens:
        raise SettingsInvalidError(
            "The closing date is before the opening date.", {"closes_on": ["Must not be before opens_on."]}
        )
    changes = {name: value for name, value in wanted.items() if getattr(questionnaire, name) != value}
    if changes:
        with unit_of_work():
            for name, value in changes.items():
                setattr(questionnaire, name, value)
            record(
                actor,
                "questionnaire.settings",
                "questionnaire",
                questionnaire.code,
                **{k: str(v) for k, v in changes.items()},
            )
    return changes


def describe(questionnaire: Questionnaire) -> dict[str, Any]:
    """The staff view of a questionnaire, with response counts per version."""
    counts = dict(
        db.session.execute(
            select(StoredResponse.version_id, func.count())
            .where(StoredResponse.questionnaire_id == questionnaire.id)
            .group_by(StoredResponse.version_id)
        ).all()
    )
    current = current_version(questionnaire)
    draft = draft_version(questionnaire)
    newest = questionnaire.versions[-1].definition if questionnaire.versions else {}
    return {
        "code": questionnaire.code,
        "status": questionnaire.status,
        "effective_status": questionnaire.effective_status(today()),
        "default_language": questionnaire.default_language,
        "title": newest.get("title", {}),
        "results_public": questionnaire.results_public,
        "requires_code": questionnaire.requires_code,
        "opens_on": questionnaire.opens_on,
        "closes_on": questionnaire.closes_on,
        "current_version": current.number if current else None,
        "draft_version": draft.number if draft else None,
        "responses": sum(counts.values()),
        "versions": [
            {
                "number": v.number,
                "published_on": v.published_on,
                "checksum": v.checksum,
                "responses": counts.get(v.id, 0),
            }
            for v in questionnaire.versions
        ],
    }


def version_of(questionnaire: Questionnaire, number: int) -> QuestionnaireVersion:
    for version in questionnaire.versions:
        if version.number == number:
            return version
    raise NotFoundError(f"Questionnaire {questionnaire.code!r} has no version {number}.")


def seed_shipped_questionnaires(directory: Path = SHIPPED_DEFINITIONS) -> list[tuple[str, str]]:
    """Load, publish and open every questionnaire shipped with the package.

    Idempotent: a questionnaire whose newest version has the same checksum is left alone; a
    changed shipped definition becomes a new published version. Returns ``(code, what happened)``.
    """
    report = []
    for path in sorted(directory.glob("*.json")):
        definition = validate_definition(json.loads(path.read_text(encoding="utf-8")))
        with unit_of_work():
            code = definition["code"]
            questionnaire = db.session.scalar(select(Questionnaire).where(Questionnaire.code == code))
            if questionnaire is None:
                questionnaire = create_questionnaire(definition, results_public=True)
                action = "created and opened"
            else:
                latest = questionnaire.versions[-1] if questionnaire.versions else None
                if latest is not None and latest.checksum == checksum(definition) and latest.is_published:
                    report.append((code, "unchanged"))
                    continue
                add_version(questionnaire, definition)
                action = "new version published"
            if questionnaire.status == "draft":
                open_questionnaire(questionnaire)
            else:
                publish_version(questionnaire.versions[-1])
            report.append((code, action))
    return report


@dataclass
class VersionCatalog:
    """Everything about one published version needed on the submission path, resolved once."""

    version_id: int
    number: int
    questionnaire_code: str
    definition: dict[str, Any]
    languages: tuple[str, ...]
    questions: dict[str, dict[str, Any]]
    question_ids: dict[str, int]
    option_ids: dict[tuple[str, str], int]
    item_ids: dict[tuple[str, str], int]
    breakdowns: tuple[str, ...]  # the demographic questions: a response's profile (responses.profiles)
    answer_schema: Any = field(repr=False, default=None)  # responses.schemas.AnswerSchema


def catalog_for(version: QuestionnaireVersion) -> VersionCatalog:
    cache: dict[int, VersionCatalog] = current_app.extensions["survey"]["catalogs"]
    catalog = cache.get(version.id)
    if catalog is None:
        catalog = cache[version.id] = _compile_catalog(version)
    return catalog


def catalog_by_id(version_id: int) -> VersionCatalog:
    """The catalog of a published version, compiled on first use; a cached one costs no query."""
    cache: dict[int, VersionCatalog] = current_app.extensions["survey"]["catalogs"]
    catalog = cache.get(version_id)
    if catalog is None:
        catalog = catalog_for(db.session.get_one(QuestionnaireVersion, version_id))
    return catalog


@dataclass(frozen=True)
class SubmissionTarget:
    """A questionnaire as the submission path needs it, read with one statement per request.

    Only ids and settings are read: the definition (over 100 kB of JSON for the op-ed questionnaire)
    is parsed once per process into the version's :class:`VersionCatalog`.
    """

    id: int
    code: str
    status: str  # as respondents see it today (dates applied)
    requires_code: bool
    version_id: int | None  # the published version asked for, else the newest; None: not published


def submission_target(code: str, number: int | None = None, fresh: bool = False) -> SubmissionTarget:
    """The questionnaire ``code`` and the id of its published version ``number`` (default: newest).

    An open questionnaire's target is reused for ``SUBMISSION_TARGET_TTL`` seconds (the hot path of
    a viral survey then reads nothing before its insert), so it may be stale: the insert checks the
    status and settings again in the database (see ``responses.services``). ``fresh`` reads anew;
    anything not open is always read anew.
    """
    key = (code, number)
    cache: dict[tuple[str, int | None], tuple[float, SubmissionTarget]] = current_app.extensions["survey"]["targets"]
    cached = None if fresh else cache.get(key)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    statement, parameters = (
        (_TARGET_NEWEST, {"code": code}) if number is None else (_TARGET_NUMBERED, {"code": code, "number": number})
    )
    row = db.session.execute(statement, parameters).first()
    if row is None:
        raise QuestionnaireNotFoundError(f"There is no questionnaire {code!r}.")
    target = SubmissionTarget(
        id=row.id,
        code=code,
        status=effective_status(row.status, row.opens_on, row.closes_on, today()),
        requires_code=bool(row.requires_code),
        version_id=row.version_id,
    )
    if target.status == "open" and target.version_id is not None:
        cache[key] = (time.monotonic() + current_app.config["SUBMISSION_TARGET_TTL"], target)
    else:
        cache.pop(key, None)
    return target


def forget_what_this_process_holds() -> None:
    """Drop what this process keeps about questionnaires for a moment (after one changed here):
    submission targets, and the snapshot rule's recent checks."""
    if has_app_context():
        current_app.extensions["survey"]["targets"].clear()
        current_app.extensions["survey"]["snapshot_checks"].clear()


@event.listens_for(Session, "after_flush")
def _forget_after_a_questionnaire_change(session: Session, _context: Any) -> None:
    changed = (*session.new, *session.dirty, *session.deleted)
    if any(isinstance(instance, Questionnaire | QuestionnaireVersion) for instance in changed):
        forget_what_this_process_holds()


def _published_version_id(questionnaire_id: Any, numbered: bool) -> Any:
    """The id of the published version ``:number`` of a questionnaire, or of its newest one."""
    versions = QuestionnaireVersion.__table__
    query = select(versions.c.id).where(
        versions.c.questionnaire_id == questionnaire_id, versions.c.published_on.is_not(None)
    )
    if numbered:
        return query.where(versions.c.number == bindparam("number"))
    return query.order_by(versions.c.number.desc()).limit(1)


def _target_statement(numbered: bool) -> Any:
    """Built once: a Core statement (no ORM entities) is compiled once and then only executed."""
    questionnaires = Questionnaire.__table__
    return select(
        questionnaires.c.id,
        questionnaires.c.status,
        questionnaires.c.opens_on,
        questionnaires.c.closes_on,
        questionnaires.c.requires_code,
        _published_version_id(questionnaires.c.id, numbered).scalar_subquery().label("version_id"),
    ).where(questionnaires.c.code == bindparam("code"))


_NEWEST_VERSION_ID = _published_version_id(bindparam("questionnaire_id"), numbered=False)
_TARGET_NEWEST = _target_statement(numbered=False)
_TARGET_NUMBERED = _target_statement(numbered=True)


def _compile_catalog(version: QuestionnaireVersion) -> VersionCatalog:
    from survey.responses.schemas import build_answer_schema  # the answer schema lives with responses

    definition = version.definition
    questions = {spec["code"]: spec for _section, spec in iter_questions(definition)}
    rows = db.session.scalars(select(Question).where(Question.version_id == version.id)).all()
    option_ids = {(q.code, o.code): o.id for q in rows for o in q.options}
    item_ids = {(q.code, i.code): i.id for q in rows for i in q.items}
    return VersionCatalog(
        version_id=version.id,
        number=version.number,
        questionnaire_code=definition["code"],
        definition=definition,
        languages=tuple(lang["code"] for lang in definition["languages"]),
        questions=questions,
        question_ids={q.code: q.id for q in rows},
        option_ids=option_ids,
        item_ids=item_ids,
        breakdowns=breakdown_codes(definition),
        answer_schema=build_answer_schema(definition),
    )
