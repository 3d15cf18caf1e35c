"""The staff download endpoint: roles, audit, streaming, formats read back, raw text for admins only."""

from __future__ import annotations

import csv
import io

import openpyxl
from sqlalchemy import select

from survey.accounts.models import AuditEvent
from survey.db import db
from survey.responses.services import submit_response
from tests.factories import dialogue_answers, submission
from tests.staff import make_staff

URL = "/api/v1/admin/questionnaires/dialogue_2022/export"


def fill(count: int) -> None:
    for number in range(count):
        answers = dialogue_answers()
        answers["message_to_leaders"] = f"Më shkruani në test{number}@example.org — Пишите ми 😀"
        submit_response("dialogue_2022", submission(answers=answers), channel="api")


def test_an_analyst_downloads_every_response_as_csv(client):
    fill(12)
    people = make_staff()
    response = client.get(URL + "?format=csv&bom=true", headers=people["analyst"].headers)
    assert response.status_code == 200 and response.is_streamed
    assert response.headers["Content-Disposition"] == "attachment; filename*=UTF-8''dialogue_2022-responses.csv"
    assert response.headers["Cache-Control"] == "no-store"
    text = response.get_data().decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 12
    assert all("@example.org" not in row["message_to_leaders"] for row in rows)  # scrubbed
    assert all("Пишите ми 😀" in row["message_to_leaders"] for row in rows)
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "responses.export"))
    assert event.actor == "analyst@example.org" and event.details["format"] == "csv"


def test_xlsx_download_reads_back(client):
    fill(3)
    people = make_staff()
    response = client.get(URL + "?format=xlsx", headers=people["admin"].headers)
    workbook = openpyxl.load_workbook(io.BytesIO(response.get_data()), read_only=True)
    data = list(workbook["data"].iter_rows(values_only=True))
    assert len(data) == 1 + 3
    workbook.close()


def test_roles_and_raw_text(client):
    fill(2)
    people = make_staff()
    assert client.get(URL, headers=people["editor"].headers).status_code == 403
    assert client.get(URL).status_code == 401
    assert client.get(URL + "?text=raw", headers=people["analyst"].headers).status_code == 403
    raw = client.get(URL + "?text=raw", headers=people["admin"].headers).get_data().decode()
    assert "test0@example.org" in raw
    assert client.get(URL + "?format=exe", headers=people["admin"].headers).status_code == 422
    assert client.get("/api/v1/admin/questionnaires/nope/export", headers=people["admin"].headers).status_code == 404
