"""Submission semantics of the JSON API (DESIGN §5), on every configured database."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import func, select, text

from survey.db import db, unit_of_work
from survey.questionnaires.models import Option, Question, QuestionItem
from survey.questionnaires.services import create_questionnaire, get_questionnaire, open_questionnaire
from survey.responses.models import Answer, Response
from tests.factories import all_types_definition, dialogue_answers, submission, valid_answers
from tests.statements import executed_statements

URL = "/api/v1/questionnaires/all_types/responses"


@pytest.fixture
def all_types(app):
    return open_questionnaire(create_questionnaire(all_types_definition()))


def stored() -> tuple[int, int]:
    return (
        db.session.scalar(select(func.count()).select_from(Response)),
        db.session.scalar(select(func.count()).select_from(Answer)),
    )


def post(client, body, url=URL):
    return client.post(url, json=body)


def test_created_after_commit_with_a_receipt_naming_no_response_id(client, all_types):
    body = submission(language="sq")
    response = post(client, body)
    assert response.status_code == 201
    assert response.json == {
        "submission_id": body["submission_id"],
        "questionnaire": "all_types",
        "version": 1,
        "received_on": dt.datetime.now(dt.UTC).date().isoformat(),
    }
    row = db.session.scalar(select(Response))
    assert (row.language, row.channel, row.submitted_on) == ("sq", "api", dt.datetime.now(dt.UTC).date())
    assert str(row.id) not in response.get_data(as_text=True)
    assert body["submission_id"] not in (row.submission_key, str(row.id))  # only a hash is kept


def test_answers_are_stored_one_row_per_value(client, all_types):
    assert post(client, submission()).status_code == 201
    rows = db.session.execute(
        select(Question.code, Answer.seq, Option.code, QuestionItem.code, Answer.number, Answer.text, Answer.rank)
        .join(Question, Answer.question_id == Question.id)
        .outerjoin(Option, Answer.option_id == Option.id)
        .outerjoin(QuestionItem, Answer.item_id == QuestionItem.id)
        .order_by(Question.position, Answer.seq)
    ).all()
    assert [tuple(r) for r in rows] == [
        ("consent", 0, "yes", None, None, None, None),
        ("heard", 0, "yes", None, None, None, None),
        ("which", 0, "a", None, None, None, None),
        ("which", 1, "b", None, None, None, None),
        ("support", 0, "agree", None, None, None, None),
        ("grid", 0, "agree", "r1", None, None, None),
        ("grid", 1, "dont_know", "r2", None, None, None),
        ("score", 0, None, None, 6, None, None),
        ("priorities", 0, "p3", None, None, None, 1),
        ("priorities", 1, "p1", None, None, None, 2),
        ("household", 0, None, None, 4, None, None),
        ("comment", 0, None, None, None, "Prishtinë ✓", None),
        ("story", 0, None, None, None, "Line one\nЂорђе Љубичић 😀", None),
        ("community", 0, "x", None, None, None, None),
    ]


def test_replay_returns_200_with_the_same_body_and_stores_nothing(client, all_types):
    body = submission()
    first = post(client, body)
    before = stored()
    again = post(client, body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json == first.json
    assert stored() == before


def test_replay_is_recognised_through_equivalent_forms(client, all_types):
    body = submission()
    assert post(client, body).status_code == 201
    same = submission(submission_id=body["submission_id"].upper())
    same["answers"]["which"] = ["a", "b"]  # same set, other order
    same["answers"]["comment"] = "  Prishtinë ✓ "  # same text after trimming
    assert post(client, same).status_code == 200
    assert stored()[0] == 1


def test_same_id_with_other_answers_is_a_conflict_and_changes_nothing(client, all_types):
    body = submission()
    assert post(client, body).status_code == 201
    before = db.session.execute(select(Response.payload_hash, Response.language)).one()
    other = submission(submission_id=body["submission_id"], language="sr-Cyrl")
    response = post(client, other)
    assert response.status_code == 409
    assert response.mimetype == "application/problem+json"
    assert response.json["code"] == "submission_conflict"
    assert db.session.execute(select(Response.payload_hash, Response.language)).one() == before
    assert stored()[0] == 1


@pytest.mark.parametrize(
    ("prepare", "code"),
    [
        (lambda q: q.close(), "questionnaire_closed"),
        (lambda q: (q.close(), q.archive()), "questionnaire_archived"),
        (lambda q: setattr(q, "closes_on", dt.date(2020, 1, 1)), "questionnaire_closed"),
        (lambda q: setattr(q, "opens_on", dt.date(2999, 1, 1)), "questionnaire_draft"),
    ],
    ids=["closed", "archived", "past-close-date", "before-open-date"],
)
def test_questionnaire_not_open_is_409_with_a_code(client, all_types, prepare, code):
    with unit_of_work():
        prepare(all_types)
    response = post(client, submission())
    assert response.status_code == 409
    assert response.json["code"] == code
    assert stored() == (0, 0)


@pytest.mark.parametrize(
    ("change", "status", "field_or_code"),
    [
        ("status = 'closed'", 409, "questionnaire_closed"),
        ("closes_on = '2020-01-01'", 409, "questionnaire_closed"),
        ("opens_on = '2999-01-01'", 409, "questionnaire_draft"),
        ("requires_code = true", 422, "participation_code"),
    ],
    ids=["closed", "past-close-date", "before-open-date", "code-now-required"],
)
def test_another_workers_change_is_enforced_by_the_insert(client, app, all_types, change, status, field_or_code):
    """A worker reuses what it read about an open questionnaire for a moment; a change made
    meanwhile elsewhere (here: plain SQL, which this process does not notice) still stops the insert."""
    assert post(client, submission()).status_code == 201
    assert ("all_types", None) in app.extensions["survey"]["targets"]  # this worker holds it as open
    with unit_of_work():
        db.session.execute(text(f"UPDATE questionnaires SET {change} WHERE code = 'all_types'"))  # noqa: S608
    assert ("all_types", None) in app.extensions["survey"]["targets"]  # still stale here

    response = post(client, submission())
    assert response.status_code == status
    if status == 409:
        assert response.json["code"] == field_or_code
    else:
        assert field_or_code in response.json["errors"]
    assert stored()[0] == 1


def test_a_replay_after_a_change_elsewhere_is_answered_as_the_questionnaire_now_is(client, app, all_types):
    body = submission()
    assert post(client, body).status_code == 201
    with unit_of_work():
        db.session.execute(text("UPDATE questionnaires SET status = 'closed' WHERE code = 'all_types'"))
    assert post(client, body).json["code"] == "questionnaire_closed"
    assert stored()[0] == 1


def test_a_steady_stream_of_submissions_reads_nothing_before_its_insert(client, all_types):
    assert post(client, submission()).status_code == 201
    with executed_statements(db.session.get_bind()) as statements:
        assert post(client, submission()).status_code == 201
    writes = [s for s in statements if "INSERT INTO" in s.upper()]
    assert writes and not [s for s in statements if s.upper().startswith("SELECT")], statements
    if db.session.get_bind().dialect.name == "postgresql":
        assert len(writes) == 1  # the response and its answers in one statement


def test_a_change_made_here_is_seen_at_once(client, all_types):
    assert post(client, submission()).status_code == 201
    with unit_of_work():
        all_types.close()  # through the ORM: this process forgets what it held
    assert post(client, submission()).json["code"] == "questionnaire_closed"


def test_draft_questionnaire_refuses_responses_and_hides_its_definition(client, app):
    create_questionnaire(all_types_definition())
    assert post(client, submission()).json["code"] == "questionnaire_draft"
    assert client.get("/api/v1/questionnaires/all_types").status_code == 404
    assert "all_types" not in [q["code"] for q in client.get("/api/v1/questionnaires").json]


def test_unknown_questionnaire_is_404(client):
    response = post(client, submission(), url="/api/v1/questionnaires/no_such/responses")
    assert response.status_code == 404
    assert response.json["code"] == "questionnaire_not_found"


def test_invalid_submission_reports_every_problem_keyed_by_question(client, all_types):
    answers = valid_answers()
    answers.update(heard="maybe", score=7, unknown_q="x", household="4")
    del answers["support"]
    body = submission(answers=answers, language="de", submission_id="not-a-uuid")
    response = post(client, body)
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert response.json["errors"] == {
        "submission_id": ["Must be a random (version 4) UUID."],
        "language": ["Must be one of: en, sq, sr-Latn, sr-Cyrl."],
        "answers": {
            "heard": ["Not a valid choice."],
            "score": ["Must be a step of 2 from 0."],
            "household": ["Must be a number."],
            "unknown_q": ["Unknown field."],
            "support": ["An answer is required."],
        },
    }
    assert stored() == (0, 0)


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"language": "en", "answers": {}}, "submission_id", "Missing data for required field."),
        (
            {"submission_id": str(uuid.uuid1()), "language": "en", "answers": {}},
            "submission_id",
            "Must be a random (version 4) UUID.",
        ),
        ({"submission_id": str(uuid.uuid4()), "language": "en", "answers": []}, "answers", "Not a valid mapping type."),
        ({"submission_id": str(uuid.uuid4()), "language": "en", "answers": {}, "id": 1}, "id", "Unknown field."),
        (
            {"submission_id": str(uuid.uuid4()), "language": "en", "answers": {}, "version": 9},
            "version",
            "Not a published version of this questionnaire.",
        ),
        (
            {"submission_id": str(uuid.uuid4()), "language": "en", "answers": {}, "version": "1"},
            "version",
            "Not a valid integer.",
        ),
        ({"submission_id": str(uuid.uuid4()), "language": None, "answers": {}}, "language", "Field may not be null."),
    ],
    ids=["no-id", "uuid1", "answers-list", "extra-field", "unpublished-version", "string-version", "null-language"],
)
def test_envelope_errors(client, all_types, body, field, message):
    response = post(client, body)
    assert response.status_code == 422
    assert response.json["errors"][field] == [message]
    assert stored() == (0, 0)


def test_a_named_published_version_is_accepted(client, all_types):
    assert post(client, submission(version=1)).status_code == 201


def test_consent_declined_stores_nothing(client, all_types):
    response = post(client, submission(answers={"consent": "no"}))
    assert response.status_code == 422
    assert response.json["errors"] == {"answers": {"consent": ["Consent was declined, so nothing can be stored."]}}
    assert stored() == (0, 0)


@pytest.mark.parametrize(
    ("data", "content_type", "status"),
    [
        ('{"submission_id": "a", "submission_id": "b"}', "application/json", 400),
        ('{"language": NaN}', "application/json", 400),
        ('{"language": Infinity}', "application/json", 400),
        ('{"language": 1e999}', "application/json", 400),
        ('{"n": ' + "9" * 5000 + "}", "application/json", 400),
        ("[" * 100_000, "application/json", 400),
        ("{not json", "application/json", 400),
        (b'{"language": "\xff"}', "application/json", 400),
        ('{"a": 1}', "text/plain", 415),
        ("", "application/json", 400),
        ("[]", "application/json", 422),
        ("x" * 300_000, "application/json", 413),
    ],
    ids=[
        "dup-key",
        "nan",
        "infinity",
        "overflow",
        "huge-int",
        "deep",
        "syntax",
        "bad-utf8",
        "text-plain",
        "empty",
        "array",
        "too-large",
    ],
)
def test_bad_bodies_get_a_clear_4xx(client, all_types, data, content_type, status):
    response = client.post(URL, data=data, content_type=content_type)
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    assert response.json["detail"]
    assert "Traceback" not in response.get_data(as_text=True)
    assert stored() == (0, 0)


def test_a_failure_after_answer_rows_were_written_leaves_no_trace(client, all_types):
    """The database fails once the first answer row is written (both databases run the answers on the
    driver's own cursor, so the failure is injected in the database itself)."""
    bind = db.session.get_bind()
    fired = []

    def fail_once() -> None:  # SQLite: called by a trigger after the first answer row is written
        if not fired:
            fired.append("answers")
            raise RuntimeError("injected failure")

    sqlite = bind.engine.dialect.name == "sqlite"
    if sqlite:
        bind.connection.dbapi_connection.create_function("fail_once", 0, fail_once)
        bind.exec_driver_sql(
            "CREATE TEMP TRIGGER fail_after_answer AFTER INSERT ON answers BEGIN SELECT fail_once(); END"
        )
    else:  # PostgreSQL: the disk fills up; a sequence, which no rollback resets, tells that it fired
        bind.exec_driver_sql("CREATE TEMP SEQUENCE injected_failures")
        bind.exec_driver_sql(
            "CREATE FUNCTION fail_after_answer() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "PERFORM nextval('injected_failures'); "
            "RAISE EXCEPTION 'injected failure' USING ERRCODE = 'disk_full'; END $$"
        )
        bind.exec_driver_sql(
            "CREATE TRIGGER fail_after_answer AFTER INSERT ON answers FOR EACH ROW EXECUTE FUNCTION fail_after_answer()"
        )
    try:
        body = submission()
        response = post(client, body)
    finally:
        if sqlite:
            bind.exec_driver_sql("DROP TRIGGER temp.fail_after_answer")
        else:
            if bind.exec_driver_sql("SELECT is_called FROM injected_failures").scalar():
                fired.append("answers")
            bind.exec_driver_sql("DROP TRIGGER fail_after_answer ON answers")
            bind.exec_driver_sql("DROP FUNCTION fail_after_answer()")
            bind.exec_driver_sql("DROP SEQUENCE injected_failures")
    assert fired, "the failure was not injected"
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert "injected" not in response.get_data(as_text=True)
    assert stored() == (0, 0)
    retry = post(client, body)
    assert retry.status_code == 201
    assert stored()[0] == 1


def test_the_op_ed_questionnaire_accepts_a_real_submission_in_cyrillic(client):
    url = "/api/v1/questionnaires/dialogue_2022/responses"
    response = post(client, submission(answers=dialogue_answers(), language="sr-Cyrl"), url=url)
    assert response.status_code == 201, response.json
    assert response.json["questionnaire"] == "dialogue_2022"


def test_the_op_ed_questionnaire_enforces_its_display_logic(client):
    url = "/api/v1/questionnaires/dialogue_2022/responses"
    answers = dialogue_answers() | {"agreements_heard": "no"}
    response = post(client, submission(answers=answers), url=url)
    assert response.status_code == 422
    assert list(response.json["errors"]["answers"]) == ["agreements_known"]


def test_list_and_definition(client, all_types):
    listed = {q["code"]: q for q in client.get("/api/v1/questionnaires").json}
    assert listed["all_types"]["version"] == 1
    assert listed["dialogue_2022"]["title"]["sq"].startswith("Zëri juaj")
    detail = client.get("/api/v1/questionnaires/dialogue_2022").json
    assert (detail["version"], detail["status"], detail["results_public"]) == (1, "open", True)
    assert detail["definition"]["consent"]["code"] == "consent_confirm"
    closed = get_questionnaire("all_types")
    with unit_of_work():
        closed.close()
    assert "all_types" not in [q["code"] for q in client.get("/api/v1/questionnaires").json]
    assert client.get("/api/v1/questionnaires/all_types").json["status"] == "closed"
