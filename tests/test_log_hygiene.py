"""Log and storage hygiene (promises S14 and P1): a representative slice of traffic leaves no address, no answer,
no password, no token and no participation code in any log record, and no address, token or code in the database.

Every record reaching the root logger is captured at DEBUG (the service's, werkzeug's and every library's at their
own levels; SQLAlchemy keeps its statements to itself unless told, which nothing here does). The slice: submissions
over the API and the web form from the marker address 203.0.113.77 (as REMOTE_ADDR and in X-Forwarded-For) with a
marker in the free text, a replay, a conflict and an invalid one; a participation code spent; staff logins (one
wrong), tokens made on a page and over the API and used; an export and the audit log downloaded; and two failures:
a database error in the middle of storing an answer, and an error while a title with a line break is handled.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import uuid
from typing import Any

import pytest
from sqlalchemy import select

import survey.responses.services as submission_service
from survey.db import Base, db
from survey.questionnaires.services import create_questionnaire, open_questionnaire
from tests.admin.conftest import browser
from tests.admin.pages import csrf_token, log_in, submit_login
from tests.corpus.places import corpus_definition
from tests.factories import dialogue_answers, submission
from tests.staff import PASSWORD, make_staff
from tests.webform import FormSession

MARKER_IP = "203.0.113.77"
AGENT = "MarkerBrowser/7.7 (log-hygiene)"
SUBMIT = "/api/v1/questionnaires/dialogue_2022/responses"


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    for name in ("survey", "werkzeug", "flask_wtf", "flask_login"):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def from_marker(**headers: str) -> dict[str, Any]:
    return {
        "environ_base": {"REMOTE_ADDR": MARKER_IP},
        "headers": {"X-Forwarded-For": MARKER_IP, "User-Agent": AGENT, **headers},
    }


def test_no_address_answer_password_token_or_code_reaches_the_logs_or_the_database(logs, app, monkeypatch):
    limiter = app.extensions["survey"]["ratelimit"]
    limiter.storage.reset()
    monkeypatch.setitem(app.config, "RATELIMIT_ENABLED", True)  # the limiter sees the address (as a hash)
    monkeypatch.setitem(app.config, "SUBMISSION_RATE_LIMIT", "1000 per minute")
    people = make_staff()
    secrets = [PASSWORD, *(person.token for person in people.values())]
    answers: list[str] = []
    api = app.test_client()

    def answer(text: str) -> dict[str, Any]:
        answers.append(text)
        return {**dialogue_answers(), "message_to_leaders": text}

    # citizens, over the API
    body = submission(answers=answer(f"answer-marker-{uuid.uuid4().hex} Prishtinë"))
    assert api.post(SUBMIT, json=body, **from_marker()).status_code == 201
    assert api.post(SUBMIT, json=body, **from_marker()).status_code == 200
    conflict = {**body, "answers": answer(f"answer-marker-{uuid.uuid4().hex} other")}
    assert api.post(SUBMIT, json=conflict, **from_marker()).status_code == 409
    invalid = submission(answers={**answer(f"answer-marker-{uuid.uuid4().hex}\x00"), "community": "nobody"})
    assert api.post(SUBMIT, json=invalid, **from_marker()).status_code == 422

    # a participation code, made by staff and spent by a citizen
    questionnaire = create_questionnaire(corpus_definition("hygiene_codes"))
    open_questionnaire(questionnaire)
    made = api.post(
        "/api/v1/admin/questionnaires/hygiene_codes/codes", json={"count": 3}, headers=people["editor"].headers
    )
    codes = [row[0] for row in csv.reader(io.StringIO(made.get_data(as_text=True)))][1:]
    assert len(codes) == 3
    secrets += codes + [code.replace("-", "") for code in codes]
    answers.append(f"answer-marker-{uuid.uuid4().hex}")
    coded = {
        "submission_id": str(uuid.uuid4()),
        "language": "sq",
        "participation_code": codes[0],
        "answers": {"consent": "yes", "free": answers[-1]},
    }
    assert api.post("/api/v1/questionnaires/hygiene_codes/responses", json=coded, **from_marker()).status_code == 201

    # a citizen, on the web form
    questionnaire = create_questionnaire(corpus_definition("hygiene_web"))
    open_questionnaire(questionnaire)
    web = browser(app)
    web.environ_base.update({"REMOTE_ADDR": MARKER_IP, "HTTP_X_FORWARDED_FOR": MARKER_IP, "HTTP_USER_AGENT": AGENT})
    form = FormSession(web, "hygiene_web", lang="sq")
    assert form.post(q__consent="yes").status_code == 200
    answers.append(f"answer-marker-{uuid.uuid4().hex} Ђорђе")
    assert form.post(q__free=answers[-1], q__row="3").status_code == 303

    # staff: logins (one wrong), tokens made on a page and over the API, and used; an export; the audit log
    staff = browser(app)
    staff.environ_base.update({"REMOTE_ADDR": MARKER_IP, "HTTP_X_FORWARDED_FOR": MARKER_IP})
    assert submit_login(staff, people["admin"].user.email, "a wrong password, surely").status_code == 422
    log_in(staff, people["admin"].user)
    made_on_page = staff.post("/admin/tokens", data={"csrf_token": csrf_token(staff, "/admin/tokens"), "name": "x"})
    secrets += re.findall(r'value="(sv_[^"]+)"', made_on_page.get_data(as_text=True))
    made_over_api = api.post("/api/v1/admin/tokens", json={"name": "script"}, headers=people["admin"].headers)
    secrets.append(made_over_api.json["token"])
    assert len(secrets) == 1 + 3 + 6 + 2
    for secret in secrets[-2:]:
        assert api.get("/api/v1/admin/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    export = api.get(
        "/api/v1/admin/questionnaires/dialogue_2022/export?format=csv&text=raw",
        buffered=True,
        **from_marker(**people["admin"].headers),
    )
    assert answers[0] in export.get_data(as_text=True)  # the export itself has the answers, of course
    assert staff.get("/admin/audit.csv").status_code == 200

    # failures: the database refuses an answer row (its error would quote the row), and an error while a title
    # with a line break is handled (its message would start a log line of its own)
    def duplicated(*args: Any) -> list[dict[str, Any]]:
        rows = original_rows(*args)
        return [row for row in rows if row["text"]] + rows  # the free-text row twice: a unique key is violated

    original_rows = submission_service._answer_rows
    monkeypatch.setattr(submission_service, "_answer_rows", duplicated)
    failing = submission(answers=answer(f"answer-marker-{uuid.uuid4().hex} lost"))
    assert api.post(SUBMIT, json=failing, **from_marker()).status_code == 500
    monkeypatch.setattr(submission_service, "_answer_rows", original_rows)
    titled = corpus_definition("hygiene_title")
    titled["title"]["en"] = "Survey\r\n[INFO] admin login ok"
    assert api.post("/api/v1/admin/questionnaires", json=titled, headers=people["editor"].headers).status_code == 201

    def broken(questionnaire: Any) -> Any:
        raise ValueError(f"cannot describe {questionnaire.versions[-1].definition['title']['en']}")

    monkeypatch.setattr("survey.questionnaires.admin_api.describe", broken)
    failed = api.get("/api/v1/admin/questionnaires/hygiene_title", headers=people["editor"].headers)
    assert failed.status_code == 500

    # the logs
    records = [(record, logs.handler.format(record)) for record in logs.records]
    assert [r.name for r, _text in records].count("survey.errors") == 2  # the two failures were logged
    for marker in (MARKER_IP, "203.0.113", AGENT, *answers, *secrets):
        found = [text[:200] for _record, text in records if marker in text]
        assert not found, f"{marker[:24]!r} is in the logs: {found[:3]}"
    for _record, text in records:
        assert "\r" not in text
        assert not [line for line in text.splitlines() if line.lstrip().startswith("[INFO] admin login ok")]

    # the database: every column of every table, read back
    stored = []
    for table in Base.metadata.sorted_tables:
        for row in db.session.execute(select(table)):
            stored += [json.dumps(value, ensure_ascii=False, default=str) for value in row]
    everything = "\n".join(stored)
    assert answers[0] in everything  # answers are stored, which is the point
    for marker in (MARKER_IP, "203.0.113", AGENT, *secrets):
        assert marker not in everything, f"{marker[:24]!r} is stored"

    # the rate limiter's counters are keyed by a daily hash, never the address
    counters = limiter.storage
    keys = " ".join(map(str, [*counters.storage.keys(), *getattr(counters, "events", {}).keys()]))
    assert keys and MARKER_IP not in keys
    limiter.storage.reset()


def test_the_production_access_log_line_names_no_client(tmp_path):
    """gunicorn with the project's settings logs method, path, status, bytes and time; not the address, the
    user agent, the referrer or the query string, whatever the request carried."""
    import datetime as dt
    import runpy
    import types
    from pathlib import Path

    from gunicorn.config import Config

    settings = runpy.run_path(str(Path(__file__).resolve().parent.parent / "gunicorn.conf.py"))
    config = Config()
    for name in ("access_log_format", "logger_class"):
        config.set(name, settings[name])
    config.set("accesslog", str(tmp_path / "access.log"))
    logger = config.logger_class(config)
    environ = {
        "REQUEST_METHOD": "POST", "PATH_INFO": SUBMIT, "QUERY_STRING": "token=secret-query",
        "RAW_URI": f"{SUBMIT}?token=secret-query", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": MARKER_IP,
        "HTTP_USER_AGENT": AGENT, "HTTP_REFERER": "https://referrer.example/",
    }  # fmt: skip
    request = types.SimpleNamespace(headers=[("USER-AGENT", AGENT), ("X-FORWARDED-FOR", MARKER_IP)])
    response = types.SimpleNamespace(status="201 CREATED", sent=87)
    logger.access(response, request, environ, dt.timedelta(milliseconds=12.7))
    for handler in logger.access_log.handlers:
        handler.flush()
    line = (tmp_path / "access.log").read_text().strip()
    assert line == f"POST {SUBMIT} 201 87 12ms"
