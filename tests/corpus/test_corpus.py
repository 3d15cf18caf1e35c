"""The bad-input corpus (``bad_inputs.json``), every entry in every place it names (promises S9-S12, S17).

Places: A a citizen's free-text answer (JSON API and the web form), Q staff questionnaire text (title,
descriptions, question text, help, option labels, authoring metadata) through the admin API, a JSON upload and
an XLSForm upload, rendered on the public pages, the staff pages and the results page; B request bodies (whole
bodies, values in every integer and boolean field, strings in every string field); H headers; P paths and
query strings; X exports (CSV with and without BOM, XLSX) read back with ``csv`` and ``openpyxl``.

Outcomes are the documented 4xx, or stored and rendered inert, or neutralised in exports, and never a 5xx.
:func:`test_every_entry_runs_in_every_place_it_names` keeps the corpus and the runners in step.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import openpyxl
import pytest
from flask import Flask
from sqlalchemy import select

from survey.accounts.models import ApiToken, AuditEvent
from survey.db import db, unit_of_work
from survey.errors import QuestionnaireNotFoundError, SubmissionInvalidError
from survey.questionnaires.services import create_questionnaire, get_questionnaire, open_questionnaire
from survey.responses.models import Answer, Response
from survey.responses.services import submit_response
from tests.admin.conftest import browser
from tests.admin.pages import csrf_token, log_in, submit_login
from tests.corpus.corpus import (
    OUTCOMES,
    PLACES,
    STORED,
    Entry,
    assert_inert,
    assert_shown,
    entries,
    entry,
    is_formula_like,
    load,
    params,
    stored_form,
)
from tests.corpus.places import (
    corpus_definition,
    counts,
    many_texts_definition,
    post_file,
    replace_in_parts,
    send,
    snapshot_of_settings,
    staff_browser,
    users_state,
    xlsform_with,
)
from tests.factories import all_types_definition
from tests.staff import make_staff
from tests.webform import FormSession

A_CODE = "corpus_a"
SUBMIT = f"/api/v1/questionnaires/{A_CODE}/responses"
SECRET = "test-secret"  # the test app's SECRET_KEY: never on a page

# place -> ids of the entries a runner below sends there (filled as the module is collected)
COVERED: dict[str, set[str]] = {place: set() for place in PLACES}


def runs(place: str, selected: list[Entry]) -> list[Any]:
    COVERED[place].update(e.id for e in selected)
    return params(selected)


def covers(entry_id: str, *places: str) -> None:
    for place in places:
        COVERED[place].add(entry_id)


@pytest.fixture
def people(app: Flask):
    return make_staff()


@pytest.fixture
def answers_questionnaire(app: Flask):
    questionnaire = create_questionnaire(corpus_definition(A_CODE))
    open_questionnaire(questionnaire)
    return questionnaire


def answer_body(text: Any, row: int = 1, **answers: Any) -> dict[str, Any]:
    return {
        "submission_id": str(uuid.uuid4()),
        "language": "en",
        "answers": {"consent": "yes", "free": text, "row": row, **answers},
    }


def stored_texts() -> list[tuple[str, str]]:
    db.session.expire_all()
    rows = db.session.execute(select(Response.channel, Answer.text).join(Answer).where(Answer.text.is_not(None)))
    return [(channel, text) for channel, text in rows]


# -- the corpus file itself ----------------------------------------------------------------------------

# Every row of bad-inputs.md, and its "Extra" rows for the features this service has.
ROWS = (
    "1 2 3 4 5 6 8 9 11 12 13 14 15 16 17 18 20 23 24 26 27 29 30 31 32 33 34 35 36 38 39 40 41 42 "
    "43 44 45 48 49 51 52 54 56 57 59 61 63 64 66a 66b 66c 66d 66e"
)
REFS = {
    *ROWS.split(" "),
    "extra: imports",
    "extra: path traversal",
    "extra: export filename",
    "extra: log injection",
}


def test_the_corpus_file_is_well_formed_and_complete():
    corpus = load()
    assert len({e.id for e in corpus}) == len(corpus)
    assert {e.ref for e in corpus} == REFS
    for item in corpus:
        assert item.where and set(item.where) <= PLACES, item.id
        assert item.outcome in OUTCOMES, item.id
        if item.outcome == "rejected":
            assert item.statuses and all(400 <= s < 500 for s in item.statuses), item.id
        if "B" in item.where and item.outcome == "rejected":
            assert item.sent_as in ("body", "value", "string"), item.id


@pytest.mark.parametrize(
    "page",
    [
        '<p><img src=x onerror="alert(1)"></p>',
        "<script>alert(1)</script>",
        '<script src="https://evil.example/x.js"></script>',
        '<a href=" JaVa\tScRiPt:alert(1)">x</a>',
        '<svg><foreignObject><iframe srcdoc="x"></iframe></foreignObject></svg>',
        "<p>unescaped <b>payload</b></p>",
    ],
)
def test_the_inertness_check_catches_active_content(page):
    with pytest.raises(AssertionError):
        assert_inert(page, "<b>payload</b>", "a bad page")
    fine = '<p>&lt;b&gt;payload&lt;/b&gt; <a href="/s/x?lang=sq">x</a></p><script src="/static/form.js"></script>'
    assert_shown(assert_inert(fine, "<b>payload</b>", "a good page"), "<b>payload</b>", "a good page")


def test_every_entry_runs_in_every_place_it_names():
    missing = [(e.id, place) for e in load() for place in e.where if e.id not in COVERED[place]]
    assert not missing, f"entries not run where they say: {missing}"


# -- A: citizens' answers -------------------------------------------------------------------------------

A_ENTRIES = entries("A")


@pytest.mark.parametrize("item", runs("A", A_ENTRIES))
def test_an_answer_through_the_api_and_the_web_form(client, answers_questionnaire, item):
    before = counts()
    response = send(client, "POST", SUBMIT, answer_body(item.text))
    if item.outcome == "rejected":
        assert response.status_code in item.statuses, response.get_data(as_text=True)[:300]
    else:
        assert response.status_code == 201, response.get_data(as_text=True)[:300]
        assert stored_texts() == [("api", stored_form(item.text))]

    form = FormSession(client, A_CODE, lang="en")
    assert form.post(q__consent="yes").status_code == 200
    switched = form.post(action="lang:sq", q__free=item.text, q__row="1")  # shown again with the answer in it
    if switched.status_code == 413:
        assert 413 in item.statuses
        assert counts() == before
        return
    assert switched.status_code == 200
    found = assert_inert(form.page, item.text, "the form page showing the answer")
    assert_shown(found, stored_form(item.text), "the form page showing the answer")
    sent = form.post(action="next")
    if item.outcome == "rejected":
        assert sent.status_code in item.statuses
        assert_inert(form.page, item.text, "the form page with the error")
        assert counts() == before
        return
    assert sent.status_code == 303, form.page[:500]
    assert sorted(stored_texts()) == [("api", stored_form(item.text)), ("web", stored_form(item.text))]


# -- X: answers in exports --------------------------------------------------------------------------------

EXPORTED_ANSWERS = entries("A", outcomes=STORED)
REFUSED_ANSWERS = [e for e in entries("A", outcomes={"rejected"}) if "X" in e.where]
runs("X", [e for e in EXPORTED_ANSWERS if "X" in e.where] + REFUSED_ANSWERS)


def csv_rows(response: Any, bom: bool = False) -> list[dict[str, str]]:
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    raw = response.get_data()
    assert raw.startswith(b"\xef\xbb\xbf") == bom
    text = raw.decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text, newline="")))


def xlsx_sheet(response: Any, name: str | int) -> list[list[Any]]:
    """The sheet's rows as cells (value and data_type kept); ``name`` or the sheet's position."""
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    workbook = openpyxl.load_workbook(io.BytesIO(response.get_data()))
    sheet = workbook.worksheets[name] if isinstance(name, int) else workbook[name]
    return [list(row) for row in sheet.iter_rows()]


def xlsx_records(response: Any) -> list[dict[str, Any]]:
    rows = xlsx_sheet(response, "data")
    names = [cell.value for cell in rows[0]]
    return [dict(zip(names, row, strict=False)) for row in rows[1:]]


def expected_cell(text: str) -> str:
    return "'" + text if is_formula_like(text) else text


def test_answers_in_exports_are_exact_and_spreadsheet_safe(client, answers_questionnaire, people):
    """Every stored answer of the corpus, exported raw (admin) and scrubbed (analyst) as CSV and XLSX."""
    for row, item in enumerate(EXPORTED_ANSWERS):
        extra = {"amount": item.expect["numeric"]} if "numeric" in item.expect else {}
        assert submit_response(A_CODE, answer_body(item.text, row=row, **extra), channel="api").created
    for item in REFUSED_ANSWERS:  # refused on input, so they can never reach an export
        with pytest.raises(SubmissionInvalidError):
            submit_response(A_CODE, answer_body(item.text, row=99999), channel="api")
    url = f"/api/v1/admin/questionnaires/{A_CODE}/export"
    admin, analyst = people["admin"].headers, people["analyst"].headers
    raw_csv = csv_rows(client.get(url + "?format=csv&text=raw", headers=admin))
    bom_csv = csv_rows(client.get(url + "?format=csv&text=raw&bom=true", headers=admin), bom=True)
    scrubbed_csv = csv_rows(client.get(url + "?format=csv", headers=analyst))
    raw_xlsx = xlsx_records(client.get(url + "?format=xlsx&text=raw", headers=admin))
    scrubbed_xlsx = xlsx_records(client.get(url + "?format=xlsx", headers=analyst))
    assert raw_csv == bom_csv
    assert len(raw_csv) == len(scrubbed_csv) == len(raw_xlsx) == len(scrubbed_xlsx) == len(EXPORTED_ANSWERS)

    def by_row(records: list[dict[str, Any]], value: Callable[[Any], float]) -> dict[int, dict[str, Any]]:
        return {int(value(record["row"])): record for record in records}

    raw_csv_rows, scrubbed_csv_rows = by_row(raw_csv, float), by_row(scrubbed_csv, float)
    raw_xlsx_rows, scrubbed_xlsx_rows = by_row(raw_xlsx, lambda c: c.value), by_row(scrubbed_xlsx, lambda c: c.value)
    failures = []
    for row, item in enumerate(EXPORTED_ANSWERS):
        stored = stored_form(item.text)
        cells = {
            "csv": raw_csv_rows[row]["free"],
            "xlsx": raw_xlsx_rows[row]["free"].value,
            "csv scrubbed": scrubbed_csv_rows[row]["free"],
            "xlsx scrubbed": scrubbed_xlsx_rows[row]["free"].value,
        }
        if raw_xlsx_rows[row]["free"].data_type != "s" or scrubbed_xlsx_rows[row]["free"].data_type != "s":
            failures.append((item.id, "an XLSX text cell is not a string cell"))
        for where, cell in cells.items():
            if is_formula_like(cell):  # what a spreadsheet would run
                failures.append((item.id, where, cell))
        for where in ("csv", "xlsx"):
            if cells[where] != expected_cell(stored):
                failures.append((item.id, where, cells[where], expected_cell(stored)))
        if item.outcome == "neutralised" and not all(cell.startswith("'") for cell in cells.values()):
            failures.append((item.id, "not prefixed", cells))
        if item.outcome == "roundtrip" and cells["csv scrubbed"] != stored:
            failures.append((item.id, "csv scrubbed", cells["csv scrubbed"], stored))
        if item.outcome == "scrubbed":
            for where in ("csv scrubbed", "xlsx scrubbed"):
                leaked = [part for part in item.expect["absent"] if part in cells[where]]
                if leaked:
                    failures.append((item.id, where, "not scrubbed", leaked))
        if "numeric" in item.expect:
            number = raw_xlsx_rows[row]["amount"]
            if (number.value, number.data_type) != (item.expect["numeric"], "n"):
                failures.append((item.id, "xlsx number", number.value, number.data_type))
            if float(raw_csv_rows[row]["amount"]) != item.expect["numeric"] or raw_csv_rows[row]["amount"][0] == "'":
                failures.append((item.id, "csv number", raw_csv_rows[row]["amount"]))
    assert not failures


# -- Q: staff questionnaire text ------------------------------------------------------------------------

Q_ENTRIES = [e for e in entries("Q") if e.cls not in ("import", "filename", "log")]
Q_CODE = "corpus_q"


def check_public_pages(client: Any, code: str, item: Entry) -> None:
    """The public pages and API of an open questionnaire whose texts are the payload."""
    text = stored_form(item.text)
    for url, shown in (("/", True), (f"/s/{code}/thanks?lang=en", True)):
        response = client.get(url)
        assert response.status_code == 200, url
        found = assert_inert(response.get_data(as_text=True), item.text, url)
        if shown:
            assert_shown(found, text, url)
    form = FormSession(client, code, lang="en")
    for label, page in (("consent page", form.page), ("first section", None)):
        if page is None:
            assert form.post(q__consent="yes").status_code == 200
            page = form.page
        found = assert_inert(page, item.text, label)
        assert_shown(found, text, label)
        assert SECRET not in page and "<Config" not in page
    published = client.get(f"/api/v1/questionnaires/{code}").json["definition"]
    assert published["title"]["en"] == text
    assert published["sections"][0]["questions"][0]["options"][0]["label"]["sq"] == text


def check_staff_pages(client: Any, code: str, item: Entry, only_detail: bool = False) -> None:
    """The staff list, detail and preview pages of a questionnaire whose texts are the payload."""
    text = stored_form(item.text)
    urls = [
        f"/admin/questionnaires/{code}",
        "/admin/questionnaires/",
        f"/admin/questionnaires/{code}/versions/1/preview?lang=en&page=0",
        f"/admin/questionnaires/{code}/versions/1/preview?lang=sr-Cyrl&page=1",
    ]
    for url in urls[:1] if only_detail else urls:
        response = client.get(url)
        assert response.status_code == 200, url
        body = response.get_data(as_text=True)
        found = assert_inert(body, item.text, url)
        assert_shown(found, text, url)
        assert SECRET not in body


def created_definition(code: str) -> dict[str, Any] | None:
    db.session.expire_all()
    try:
        questionnaire = get_questionnaire(code)
    except QuestionnaireNotFoundError:
        return None
    return questionnaire.versions[-1].definition


def assert_texts_stored(code: str, item: Entry) -> None:
    definition = created_definition(code)
    assert definition is not None
    text = stored_form(item.text)
    section = definition["sections"][0]
    assert definition["title"] == {lang: text for lang in definition["title"]}
    assert section["title"]["sq"] == section["description"]["en"] == text
    assert definition["consent"]["text"]["sr-Latn"] == text
    question = section["questions"][0]
    assert question["text"]["sr-Cyrl"] == question["help"]["en"] == question["options"][0]["label"]["en"] == text


@pytest.mark.parametrize("item", runs("Q", Q_ENTRIES))
def test_staff_text_through_the_admin_api(app, client, people, item):
    before = counts()
    editor = people["editor"].headers
    created = send(client, "POST", "/api/v1/admin/questionnaires", corpus_definition(Q_CODE, item.text), editor)
    if item.outcome == "rejected":
        assert created.status_code in item.statuses, created.get_data(as_text=True)[:300]
        assert created.status_code == 413 or created.json["code"] == "definition_invalid"
        assert counts() == before
        return
    assert created.status_code == 201, created.get_data(as_text=True)[:500]
    assert_texts_stored(Q_CODE, item)
    version = client.get(f"/api/v1/admin/questionnaires/{Q_CODE}/versions/1", headers=editor)
    assert version.json["title"]["en"] == stored_form(item.text)
    assert client.post(f"/api/v1/admin/questionnaires/{Q_CODE}/open", headers=editor).status_code == 200
    check_public_pages(client, Q_CODE, item)
    check_staff_pages(staff_browser(app, people["analyst"].user)[0], Q_CODE, item)


@pytest.mark.parametrize("item", runs("Q", Q_ENTRIES))
def test_staff_text_through_a_json_and_an_xlsform_upload(app, people, item):
    client, token = staff_browser(app, people["editor"].user)
    before = counts()
    document = json.dumps(corpus_definition(Q_CODE, item.text), ensure_ascii=True).encode()
    uploads = [(Q_CODE, document, "definition.json"), ("corpus_x", xlsform_with(item.text), "form.xlsx")]
    for code, content, filename in uploads:
        created = post_file(client, "/admin/questionnaires/", token, content, filename)
        if item.outcome == "rejected":
            assert created.status_code in item.statuses, filename
            assert_inert(created.get_data(as_text=True), item.text, f"the problem page of {filename}")
            assert counts() == before
            continue
        assert created.status_code == 303, (filename, created.get_data(as_text=True)[:2000])
        assert_texts_stored(code, item)
        check_staff_pages(client, code, item, only_detail=True)  # the API test renders the same texts everywhere


SHOWN_TEXTS = [e for e in Q_ENTRIES if e.outcome in STORED]
runs("Q", SHOWN_TEXTS)
runs("X", [e for e in SHOWN_TEXTS if "X" in e.where])


def many_texts_questionnaire(code: str, responses: int) -> list[str]:
    """A published questionnaire with every shown text; everyone answers "a" (the text) to every question."""
    texts = [stored_form(e.text) for e in SHOWN_TEXTS]
    definition = many_texts_definition(code, [e.text for e in SHOWN_TEXTS])
    questionnaire = create_questionnaire(definition, results_public=True)
    open_questionnaire(questionnaire)
    for number in range(responses):
        answers = {"group": "xy"[number % 2], **{f"q{i}": "a" for i in range(len(texts))}}
        body = {"submission_id": str(uuid.uuid4()), "language": "en", "answers": answers}
        assert submit_response(code, body, channel="api").created
    return texts


def test_staff_texts_on_the_results_page_and_in_its_tables(client):
    texts = many_texts_questionnaire("corpus_r", 60)
    for url in ("/results/corpus_r?lang=en", "/results/corpus_r?lang=sq&breakdown=group"):
        response = client.get(url, headers={"Accept": "text/html"})
        assert response.status_code == 200, url
        body = response.get_data(as_text=True)
        assert "<svg" in body or "breakdown" in url  # published: the charts with their labels are there
        for item, text in zip(SHOWN_TEXTS, texts, strict=True):
            found = assert_inert(body, item.text, f"{url} ({item.id})")
            assert_shown(found, text, f"{url} ({item.id})")
    # the published tables as files (open-data portals): every text cell spreadsheet-safe
    table = "/api/v1/questionnaires/corpus_r/results/table"
    rows = csv_rows(client.get(table + "?format=csv"), bom=True)
    sheet = xlsx_sheet(client.get(table + "?format=xlsx"), 0)
    cells = [cell for row in rows for cell in row.values()] + [c.value for line in sheet for c in line]
    assert not [cell for cell in cells if isinstance(cell, str) and is_formula_like(cell)]
    for item, text in zip(SHOWN_TEXTS, texts, strict=True):
        assert expected_cell(text) in {row["question_text"] for row in rows}, item.id
        assert expected_cell(text) in {row["option_label"] for row in rows}, item.id


def test_staff_texts_in_exports_are_spreadsheet_safe(client, people):
    texts = many_texts_questionnaire("corpus_e", 3)
    url = "/api/v1/admin/questionnaires/corpus_e/export?text=raw"
    admin = people["admin"].headers
    names = next(csv.reader(io.StringIO(client.get(url + "&format=csv", headers=admin).get_data(as_text=True))))
    labelled = list(
        csv.reader(io.StringIO(client.get(url + "&format=csv&labels=true", headers=admin).get_data(as_text=True)))
    )
    labelled_xlsx = xlsx_sheet(client.get(url + "&format=xlsx&labels=true", headers=admin), "data")
    codebook = xlsx_sheet(client.get(url + "&format=xlsx", headers=admin), "codebook")
    codebook_cells = [cell for row in codebook for cell in row if cell.value is not None]
    assert len(labelled) == len(labelled_xlsx) == 4
    failures = []
    for index, (item, text) in enumerate(zip(SHOWN_TEXTS, texts, strict=True)):
        column = names.index(f"q{index}")
        wanted = expected_cell(text)
        if [row[column] for row in labelled] != [wanted] * 4:  # the header (question text) and three labels
            failures.append((item.id, "csv labels", [row[column] for row in labelled], wanted))
        cells = [row[column] for row in labelled_xlsx]
        if [(c.value, c.data_type) for c in cells] != [(wanted, "s")] * 4:
            failures.append((item.id, "xlsx labels", [(c.value, c.data_type) for c in cells], wanted))
        if not any(c.value == wanted and c.data_type == "s" for c in codebook_cells):
            failures.append((item.id, "codebook", wanted))
    every_cell = [*(cell for row in labelled for cell in row), *(c.value for row in labelled_xlsx for c in row)]
    every_cell += [c.value for c in codebook_cells]
    formula_cells = [cell for cell in every_cell if isinstance(cell, str) and is_formula_like(cell)]
    assert not failures and not formula_cells, (failures, formula_cells)


# -- B: request bodies ----------------------------------------------------------------------------------


def body_operations(client: Any) -> list[tuple[str, str]]:
    """(method, path template) of every JSON operation that takes a request body, from the OpenAPI document."""
    spec = client.get("/api/v1/openapi.json").json
    found = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if isinstance(operation, dict) and "requestBody" in operation:
                found.append((method.upper(), path))
    assert len(found) >= 8
    return found


def fill_path(path: str, values: dict[str, Any]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: quote(str(values[m.group(1)]), safe=""), path)


def page_post_routes(app: Flask) -> list[str]:
    return sorted(
        rule.rule
        for rule in app.url_map.iter_rules()
        if "POST" in rule.methods and not rule.rule.startswith("/api/")  # type: ignore[operator]
    )


def fill_rule(rule: str, values: dict[str, Any]) -> str:
    def value(match: re.Match[str]) -> str:
        converter, name = match.group(1), match.group(2)
        if converter and converter.startswith("any("):
            return converter[4:-1].split(",")[-1].strip()
        return quote(str(values.get(name, 1)), safe="")  # an argument no test knows yet: a plain value

    return re.sub(r"<(?:([^:<>]+):)?(\w+)>", value, rule)


BODY_ENTRIES = [e for e in load() if e.sent_as == "body"]


@pytest.mark.parametrize("item", runs("B", BODY_ENTRIES))
def test_a_whole_body_at_every_operation_that_reads_one(app, client, answers_questionnaire, people, item):
    admin = people["admin"].headers
    values = {"code": A_CODE, "user_id": people["analyst"].user.id, "token_id": 1, "number": 1}
    body = item.body.encode("utf-8")
    staff, token = staff_browser(app, people["admin"].user)
    before, settings, users = counts(), snapshot_of_settings(), users_state()
    for method, path in body_operations(client):
        url = fill_path(path, values)
        response = client.open(url, method=method, data=body, content_type="application/json", headers=admin)
        assert response.status_code in item.statuses, (method, url, response.status_code, response.json)
        assert response.mimetype == "application/problem+json"
    if len(body) > app.config["MAX_CONTENT_LENGTH"]:  # pages read their bodies too
        form = f"csrf_token={token}&x={quote_plus(item.body)}".encode()  # encoded once, sent to every page
        for rule in page_post_routes(app):
            url = fill_rule(rule, values)
            response = staff.post(url, data=form, content_type="application/x-www-form-urlencoded")
            assert response.status_code == 413, (url, response.status_code)
    if "upload_status" in item.expect:
        sent = post_file(staff, "/admin/questionnaires/", token, body, "definition.json")
        assert sent.status_code in item.expect["upload_status"]
    assert (counts(), snapshot_of_settings(), users_state()) == (before, settings, users)


VALUE_ENTRIES = [e for e in load() if e.sent_as == "value"]


def _definition_with(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    definition = corpus_definition("corpus_v")
    change(definition)
    return definition


def _question(definition: dict[str, Any], code: str) -> dict[str, Any]:
    return next(q for q in definition["sections"][0]["questions"] if q["code"] == code)


# (method, url template, body builder) per integer field and per boolean field of the JSON bodies
INTEGER_FIELDS: dict[str, tuple[str, str, Callable[[Any], Any]]] = {
    "answer to an integer question": ("POST", SUBMIT, lambda v: answer_body("x", row=v)),
    "submission version": ("POST", SUBMIT, lambda v: {**answer_body("x"), "version": v}),
    "token days": ("POST", "/api/v1/admin/tokens", lambda v: {"name": "t", "days": v}),
    "token user_id": ("POST", "/api/v1/admin/tokens", lambda v: {"name": "t", "user_id": v}),
    "participation code count": ("POST", f"/api/v1/admin/questionnaires/{A_CODE}/codes", lambda v: {"count": v}),
    "definition max_length": (
        "POST",
        "/api/v1/admin/questionnaires",
        lambda v: _definition_with(lambda d: _question(d, "free").update(max_length=v)),
    ),
    "definition option value": (
        "POST",
        "/api/v1/admin/questionnaires",
        lambda v: _definition_with(lambda d: _question(d, "choice")["options"][0].update(value=v)),
    ),
}
BOOLEAN_FIELDS: dict[str, tuple[str, str, Callable[[Any], Any]]] = {
    "settings results_public": ("PATCH", f"/api/v1/admin/questionnaires/{A_CODE}", lambda v: {"results_public": v}),
    "settings requires_code": ("PATCH", f"/api/v1/admin/questionnaires/{A_CODE}", lambda v: {"requires_code": v}),
    "user active": ("PATCH", "/api/v1/admin/users/{analyst}", lambda v: {"active": v}),
    "definition question required": (
        "POST",
        "/api/v1/admin/questionnaires",
        lambda v: _definition_with(lambda d: _question(d, "choice").update(required=v)),
    ),
    "definition text multiline": (
        "POST",
        "/api/v1/admin/questionnaires",
        lambda v: _definition_with(lambda d: _question(d, "free").update(multiline=v)),
    ),
    "definition option exclusive": (
        "POST",
        "/api/v1/admin/questionnaires",
        lambda v: _definition_with(lambda d: _question(d, "choice")["options"][1].update(exclusive=v)),
    ),
    "definition section sensitive": (
        "POST",
        "/api/v1/admin/questionnaires",
        lambda v: _definition_with(lambda d: d["sections"][0].update(sensitive=v)),
    ),
}


@pytest.mark.parametrize("item", runs("B", VALUE_ENTRIES))
def test_a_mistyped_value_in_every_integer_and_boolean_field(client, answers_questionnaire, people, item):
    value = item.payload
    fields = {}
    if not isinstance(value, int) or isinstance(value, bool):  # 1 is an integer
        fields |= INTEGER_FIELDS
    if not isinstance(value, bool):  # true is a boolean
        fields |= BOOLEAN_FIELDS
    admin = people["admin"].headers
    before, settings, users = counts(), snapshot_of_settings(), users_state()
    refused = {}
    for name, (method, url, build) in fields.items():
        url = url.replace("{analyst}", str(people["analyst"].user.id))
        response = send(client, method, url, build(value), admin)
        refused[name] = response.status_code
    wrong = {name: status for name, status in refused.items() if status not in item.statuses}
    assert not wrong, wrong
    assert (counts(), snapshot_of_settings(), users_state()) == (before, settings, users)


STRING_ENTRIES = [e for e in load() if e.sent_as == "string"]


CODED = "corpus_coded"


def _with_code(v: str) -> dict[str, Any]:
    return {**answer_body("x"), "participation_code": v}


STRING_FIELDS: dict[str, tuple[str, str, Callable[[str], Any]]] = {
    "answer text": ("POST", SUBMIT, lambda v: answer_body(v)),
    "one-line answer text": ("POST", SUBMIT, lambda v: answer_body("x", line=v)),
    "answer key": ("POST", SUBMIT, lambda v: {**answer_body("x"), "answers": {"consent": "yes", v: "x"}}),
    "submission_id": ("POST", SUBMIT, lambda v: {**answer_body("x"), "submission_id": v}),
    "language": ("POST", SUBMIT, lambda v: {**answer_body("x"), "language": v}),
    "participation code": ("POST", f"/api/v1/questionnaires/{CODED}/responses", _with_code),
    "definition title": (
        "POST",
        "/api/v1/admin/questionnaires",
        lambda v: _definition_with(lambda d: d["title"].update(en=v)),
    ),
    "definition language name": (
        "POST",
        "/api/v1/admin/questionnaires",
        lambda v: _definition_with(lambda d: d["languages"][1].update(name=v)),
    ),
    "definition authoring excerpt": (
        "POST",
        "/api/v1/admin/questionnaires",
        lambda v: _definition_with(lambda d: _question(d, "choice").update(op_ed_excerpt=v)),
    ),
    "definition question themes": (
        "POST",
        "/api/v1/admin/questionnaires",
        lambda v: _definition_with(lambda d: _question(d, "choice").update(themes=[v])),
    ),
    "definition source document": (
        "POST",
        "/api/v1/admin/questionnaires",
        lambda v: _definition_with(lambda d: d.update(source_document={"title": v})),
    ),
    "definition metadata key": (
        "POST",
        "/api/v1/admin/questionnaires",
        lambda v: _definition_with(lambda d: d.update(estimated_duration_minutes={v: 5})),
    ),
    "draft title": (
        "PUT",
        f"/api/v1/admin/questionnaires/{A_CODE}/draft",
        lambda v: {**corpus_definition(A_CODE), "title": {"en": v}},
    ),
    "settings date": ("PATCH", f"/api/v1/admin/questionnaires/{A_CODE}", lambda v: {"opens_on": v}),
    "user e-mail": (
        "POST",
        "/api/v1/admin/users",
        lambda v: {"email": f"x{v}@example.org", "name": "X", "role": "analyst", "password": "a long password 1"},
    ),
    "user name": (
        "POST",
        "/api/v1/admin/users",
        lambda v: {"email": "y@example.org", "name": v, "role": "analyst", "password": "a long password 1"},
    ),
    "user role": ("PATCH", "/api/v1/admin/users/{analyst}", lambda v: {"role": v}),
    "token name": ("POST", "/api/v1/admin/tokens", lambda v: {"name": v}),
}
# Passwords are never shown, so only what cannot be hashed at all (a lone surrogate) is refused in them.
PASSWORD_FIELD = (
    "POST",
    "/api/v1/admin/users",
    lambda v: {"email": "z@example.org", "name": "Z", "role": "analyst", "password": f"a long password {v}"},
)


@pytest.mark.parametrize("item", runs("B", STRING_ENTRIES))
def test_a_forbidden_character_in_every_string_field(client, answers_questionnaire, people, item):
    coded = create_questionnaire(corpus_definition(CODED))
    open_questionnaire(coded)
    with unit_of_work():
        coded.requires_code = True
    fields = dict(STRING_FIELDS)
    if "\ud800" in item.text:
        fields["user password"] = PASSWORD_FIELD
    admin = people["admin"].headers
    before, settings, users = counts(), snapshot_of_settings(), users_state()
    statuses = {}
    for name, (method, url, build) in fields.items():
        url = url.replace("{analyst}", str(people["analyst"].user.id))
        statuses[name] = send(client, method, url, build(item.text), admin).status_code
    wrong = {name: status for name, status in statuses.items() if status not in item.statuses}
    assert not wrong, wrong
    assert (counts(), snapshot_of_settings(), users_state()) == (before, settings, users)


@pytest.mark.parametrize("item", [e for e in STRING_ENTRIES if "\ud800" not in e.text])
def test_a_forbidden_character_in_every_staff_form_field(app, people, item):
    """The same strings through the staff pages' forms (a form cannot carry a lone surrogate)."""
    client, token = staff_browser(app, people["admin"].user)
    before, users = counts(), users_state()
    person = {"csrf_token": token, "role": "analyst", "password": "a long password 1"}
    sent = {
        "user name": client.post("/admin/users", data={**person, "email": "p@example.org", "name": item.text}),
        "user e-mail": client.post("/admin/users", data={**person, "email": f"p{item.text}@example.org", "name": "P"}),
        "token name": client.post("/admin/tokens", data={"csrf_token": token, "name": item.text}),
    }
    wrong = {name: response.status_code for name, response in sent.items() if response.status_code not in item.statuses}
    assert not wrong, wrong
    for name, response in sent.items():
        assert_inert(response.get_data(as_text=True), item.text, name)
    assert (counts(), users_state()) == (before, users)
    anonymous = browser(app)
    login = submit_login(anonymous, f"a{item.text}@example.org", "whatever it is")
    assert login.status_code == 422


# -- P, H and the behaviours of the authorisation, idempotency, import, filename and log rows ---------------


def get_routes(app: Flask) -> list[Any]:
    return sorted(
        (rule for rule in app.url_map.iter_rules() if "GET" in rule.methods),  # type: ignore[operator]
        key=lambda rule: rule.rule,
    )


def route_values(people: dict[str, Any]) -> dict[str, Any]:
    return {
        "code": A_CODE,
        "number": 1,
        "user_id": people["analyst"].user.id,
        "token_id": 1,
        "filename": "survey.css",
        "action": "close",
    }


def fetch(app: Flask, client: Any, staff: Any, admin: dict[str, str], url: str) -> Any:
    """GET ``url`` as an admin: with the bearer token on the API, with the logged-in browser on pages."""
    if url.startswith("/api/"):
        return client.get(url, headers=admin, buffered=True)  # read a streamed export inside its request
    return staff.get(url)


covers("sql-24", "P")


def unknown_query_refused(response: Any, name: str) -> bool:
    """The JSON API's answer to an undeclared query parameter: 400, problem+json, the parameter named."""
    return (
        response.status_code == 400
        and response.mimetype == "application/problem+json"
        and response.json["code"] == "unknown_query_parameter"
        and response.json["errors"] == {name: ["Unknown query parameter."]}
    )


def test_sql_in_a_sort_parameter_is_refused_or_ignored_everywhere(app, client, answers_questionnaire, people):
    """The JSON API refuses an undeclared query parameter with a 400 naming it; pages ignore it."""
    staff, _token = staff_browser(app, people["admin"].user)
    admin, values = people["admin"].headers, route_values(people)
    before = counts() | {"audit_events": 0}  # downloads are audited
    api_routes = 0
    for rule in get_routes(app):
        url = fill_rule(rule.rule, values)
        plain = fetch(app, client, staff, admin, url)
        injected = fetch(app, client, staff, admin, url + "?" + entry("sql-24").payload)
        assert plain.status_code < 500 and injected.status_code < 500, url
        if url.startswith("/api/"):
            api_routes += 1
            assert unknown_query_refused(injected, "sort"), (url, injected.status_code, injected.get_data()[:300])
            assert b"DROP TABLE" not in injected.get_data(), url  # the value is never echoed
            continue
        assert injected.status_code == plain.status_code, url
        if plain.mimetype == "application/json":
            assert injected.json == plain.json, url
    assert api_routes >= 15
    assert counts() | {"audit_events": 0} == before
    assert db.session.scalar(select(Response.id).limit(1)) is None  # the table is there and readable


covers("sql-27", "B", "P")


def test_sql_in_codes_tokens_and_identifiers(app, client, answers_questionnaire, people, caplog):
    payload = entry("sql-27").payload
    staff, token = staff_browser(app, people["admin"].user)
    admin, values = people["admin"].headers, route_values(people) | {"code": payload}
    for rule in app.url_map.iter_rules():
        if "code" not in rule.arguments:
            continue
        url = fill_rule(rule.rule, values)
        if "GET" in rule.methods:  # type: ignore[operator]
            assert fetch(app, client, staff, admin, url).status_code == 404, url
        if "POST" in rule.methods:  # type: ignore[operator]
            if url.startswith("/api/"):
                body: dict[str, Any] = {"count": 1} if url.endswith("/codes") else {}
                response = send(client, "POST", url, answer_body("x") if url.endswith("/responses") else body, admin)
            else:
                response = staff.post(url, data={"csrf_token": token})
            assert response.status_code == 404, url
    assert client.get("/api/v1/admin/me", headers={"Authorization": f"Bearer {payload}"}).status_code == 401
    assert send(client, "POST", SUBMIT, {**answer_body("x"), "submission_id": payload}).status_code == 422
    with unit_of_work():
        get_questionnaire(A_CODE).requires_code = True
    refused = send(client, "POST", SUBMIT, {**answer_body("x"), "participation_code": payload})
    assert refused.status_code == 422 and "participation_code" in refused.json["errors"]
    assert submit_login(browser(app), payload).status_code == 422
    assert not [r for r in caplog.records if r.levelname in ("WARNING", "ERROR")]


covers("sql-29", "P")


def test_huge_limits_and_negative_offsets(app, client, people):
    admin = people["admin"].headers
    assert client.get("/api/v1/admin/audit?limit=1000000&offset=-1", headers=admin).status_code == 422
    assert client.get("/api/v1/admin/audit?limit=1000&offset=0", headers=admin).status_code == 200
    staff, _token = staff_browser(app, people["admin"].user)
    for query in ("page=-1&limit=1000000", "page=99999999999999999999", "page=1e9"):
        assert staff.get(f"/admin/audit?{query}").status_code == 200, query


covers("authz-30", "P")


def test_an_export_needs_the_right_and_an_existing_questionnaire(client, answers_questionnaire, people):
    url = "/api/v1/admin/questionnaires/{}/export"
    assert client.get(url.format(A_CODE), headers=people["editor"].headers).status_code == 403
    assert client.get(url.format("no_such_one"), headers=people["analyst"].headers).status_code == 404
    assert client.get(url.format(A_CODE)).status_code == 401
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "responses.export")) is None
    assert client.get(url.format(A_CODE), headers=people["analyst"].headers).status_code == 200


covers("authz-31", "B")


def test_a_body_naming_another_questionnaire_never_redirects_an_action(client, answers_questionnaire, people):
    editor, body = people["admin"].headers, entry("authz-31").payload
    victim_before = snapshot_of_settings()
    actions = ("publish", "open", "close", "archive", "snapshot", "draft/cyrillic")
    for action in actions:
        response = send(client, "POST", f"/api/v1/admin/questionnaires/no_such_one/{action}", body, editor)
        assert response.status_code == 404, action
    assert snapshot_of_settings() == victim_before
    assert send(client, "POST", f"/api/v1/admin/questionnaires/{A_CODE}/close", body, editor).status_code == 200
    statuses = dict((code, status) for code, status, *_ in snapshot_of_settings())
    assert statuses[A_CODE] == "closed" and statuses["dialogue_2022"] == "open"


covers("authz-33", "B")


def test_answers_naming_questions_or_options_of_another_questionnaire(client, answers_questionnaire):
    other = create_questionnaire(all_types_definition())
    open_questionnaire(other)
    before = counts()
    for answers in (
        {"heard": "yes"},  # a question of all_types
        {"choice": "not_sure"},  # an option code of all_types
        {"choice": "somewhat_support"},  # an option code of dialogue_2022
        {"awareness_dialogue": "a_little"},
    ):
        response = send(client, "POST", SUBMIT, answer_body("x", **answers))
        assert response.status_code == 422, answers
    response = send(client, "POST", SUBMIT, {**answer_body("x"), "version": 2})
    assert response.status_code == 422 and "version" in response.json["errors"]
    assert counts() == before


covers("authz-34", "P")


def test_staff_objects_are_not_served_to_anonymous_visitors(app, client, answers_questionnaire, people):
    values = route_values(people)
    anonymous = browser(app)
    for rule in get_routes(app):
        url = fill_rule(rule.rule, values)
        if url.startswith("/api/v1/admin"):
            response = client.get(url)
            assert response.status_code == 401 and response.mimetype == "application/problem+json", url
        elif url.startswith("/admin") and url != "/admin/login":
            response = anonymous.get(url)
            assert response.status_code == 302, url
            assert response.headers["Location"].startswith("/admin/login"), url
            assert "[en]" not in response.get_data(as_text=True), url  # nothing of the questionnaire
    for url in ("/static/../instance/secret_key", "/static/%2e%2e/%2e%2e/instance/secret_key", "/static/..%2fapp.py"):
        response = client.get(url)
        assert response.status_code == 404, url
        assert SECRET not in response.get_data(as_text=True)


covers("authz-35", "B", "H")


def test_a_cross_site_text_plain_post_changes_nothing(app, client, answers_questionnaire, people):
    staff, token = staff_browser(app, people["admin"].user)
    values = route_values(people)
    before, settings, users = counts(), snapshot_of_settings(), users_state()
    body = entry("authz-35").payload
    evil = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
    for rule in page_post_routes(app):
        url = fill_rule(rule, values)
        plain = staff.post(url, data=body, content_type="text/plain", headers=evil)
        assert plain.status_code in (400, 403), url
        with_token = staff.post(url, data={"csrf_token": token}, headers=evil)
        assert with_token.status_code == 403, url
    for rule in app.url_map.iter_rules():
        methods = rule.methods - {"GET", "HEAD", "OPTIONS"}  # type: ignore[operator]
        if not rule.rule.startswith("/api/v1/admin"):
            continue
        url = fill_rule(rule.rule, values)
        for method in methods:
            # the browser's cookies ride along, but the API only believes a bearer token
            response = staff.open(url, method=method, data=body, content_type="text/plain", headers=evil)
            assert response.status_code == 401, (method, url)
    for method, path in body_operations(client):
        url = fill_path(path, values)
        admin = people["admin"].headers
        response = client.open(url, method=method, data=body, content_type="text/plain", headers=admin)
        assert response.status_code == 415, (method, url)
    assert (counts(), snapshot_of_settings(), users_state()) == (before, settings, users)


covers("authz-36", "P")


def test_a_get_to_a_mutating_path_is_405_and_changes_nothing(app, client, answers_questionnaire, people):
    staff, _token = staff_browser(app, people["admin"].user)
    values = route_values(people)
    readable = {rule.rule for rule in get_routes(app)}
    before, settings, users = counts(), snapshot_of_settings(), users_state()
    checked = 0
    for rule in app.url_map.iter_rules():
        if rule.rule in readable:
            continue
        url = fill_rule(rule.rule, values)
        response = fetch(app, client, staff, people["admin"].headers, url)
        assert response.status_code == 405, url
        assert set(response.headers["Allow"].split(", ")) & {"POST", "PUT", "PATCH", "DELETE"}, url
        checked += 1
    assert checked >= 15
    assert (counts(), snapshot_of_settings(), users_state()) == (before, settings, users)


covers("authz-38", "H", "B")


def test_forged_expired_and_revoked_tokens_are_401(app, client, people):
    admin = people["admin"]
    forged = list(entry("authz-38").payload)
    with unit_of_work():
        expired = db.session.scalar(select(ApiToken).where(ApiToken.user_id == people["editor"].user.id))
        expired.expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        revoked = db.session.scalar(select(ApiToken).where(ApiToken.user_id == people["analyst"].user.id))
        revoked.revoked_at = dt.datetime.now(dt.UTC)
    tokens = [*forged, people["editor"].token, people["analyst"].token, admin.token[:-1], admin.token + "x"]
    admin_gets = [r.rule for r in get_routes(app) if r.rule.startswith("/api/v1/admin") and not r.arguments]
    for token in tokens:
        for url in admin_gets:
            response = client.get(url, headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 401, (url, token[:12])
        assert client.get("/api/v1/admin/me", headers={"Authorization": f"Basic {token}"}).status_code == 401
    assert client.get("/api/v1/admin/me", headers=admin.headers).status_code == 200


covers("authz-39", "H")


def test_a_session_cookie_from_before_login_is_not_a_login(app, people):
    visitor = browser(app)
    csrf_token(visitor)  # the anonymous session now holds a CSRF token
    before_login = visitor.get_cookie("session").value
    log_in(visitor, people["admin"].user)
    after_login = visitor.get_cookie("session").value
    assert after_login != before_login
    replay = browser(app)
    replay.set_cookie("session", before_login)
    assert replay.get("/admin/questionnaires/").status_code == 302
    assert visitor.get("/admin/questionnaires/").status_code == 200
    token = csrf_token(visitor, "/admin/tokens")
    assert visitor.post("/admin/logout", data={"csrf_token": token}).status_code == 303
    replay.set_cookie("session", after_login)
    assert replay.get("/admin/questionnaires/").status_code == 302  # logged out on the server too


covers("authz-40", "H")


def test_a_forged_host_never_appears_in_a_link_or_redirect(app, people):
    visitor = browser(app)
    evil = {"base_url": "http://evil.example"}
    responses = [visitor.get("/admin/", **evil)]
    login_page = visitor.get("/admin/login", **evil)
    token = re.search(r'name="csrf_token" value="([^"]+)"', login_page.get_data(as_text=True)).group(1)
    credentials = {"csrf_token": token, "email": people["admin"].user.email, "password": "correct horse battery staple"}
    logged_in = visitor.post("/admin/login", data=credentials, **evil)
    assert logged_in.status_code == 303
    responses += [login_page, logged_in, visitor.get("/admin/questionnaires/", **evil)]
    responses += [visitor.get("/", **evil), visitor.get("/s/dialogue_2022", **evil)]
    for response in responses:
        assert response.status_code < 500
        assert "evil.example" not in response.headers.get("Location", "")
        assert "evil.example" not in response.get_data(as_text=True)


covers("authz-41", "P")


@pytest.mark.parametrize("target", entry("authz-41").payload)
def test_a_foreign_next_target_is_refused(app, people, target):
    visitor = browser(app)
    page = visitor.get("/admin/login?next=" + quote(target, safe=""))
    assert page.status_code == 200 and target not in page.get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    data = {"csrf_token": token, "email": people["admin"].user.email, "password": "correct horse battery staple"}
    response = visitor.post("/admin/login", data={**data, "next": target})
    assert response.status_code == 303
    assert response.headers["Location"] == "/admin/questionnaires/"
    visitor = browser(app)
    response = submit_login(visitor, people["admin"].user.email, next_url="/admin/users")
    assert response.headers["Location"] == "/admin/users"  # a path of this site is followed


covers("authz-42", "H")


def test_rotating_x_forwarded_for_does_not_escape_the_rate_limit(app, client, answers_questionnaire, monkeypatch):
    limiter = app.extensions["survey"]["ratelimit"]
    limiter.storage.reset()
    monkeypatch.setitem(app.config, "RATELIMIT_ENABLED", True)
    monkeypatch.setitem(app.config, "SUBMISSION_RATE_LIMIT", "3 per 10 minutes")
    statuses = []
    for number in range(5):
        response = send(
            client,
            "POST",
            SUBMIT,
            answer_body("x"),
            {"X-Forwarded-For": f"198.51.100.{number}"},
            environ_base={"REMOTE_ADDR": "203.0.113.77"},
        )
        statuses.append(response.status_code)
    limiter.storage.reset()
    assert statuses == [201, 201, 201, 429, 429]


covers("idem-66a", "B")
covers("idem-66b", "B")
covers("idem-66c", "B")
covers("idem-66d", "B")
covers("idem-66e", "B")


def test_the_same_submission_id_again(app, client, answers_questionnaire, people):
    body = answer_body("the first words")
    first = send(client, "POST", SUBMIT, body)
    assert first.status_code == 201
    replay = send(client, "POST", SUBMIT, body)  # 66a
    assert replay.status_code == 200 and replay.json == first.json
    changed = {**body, "answers": {**body["answers"], "free": "other words"}}
    assert send(client, "POST", SUBMIT, changed).status_code == 409  # 66b
    assert [send(client, "POST", SUBMIT, body).status_code for _ in range(20)] == [200] * 20  # 66c
    assert stored_texts() == [("api", "the first words")]
    # 66e: no route deletes a response (the only DELETE is a token's), so a resubmission stays a replay
    deleting = [r.rule for r in app.url_map.iter_rules() if "DELETE" in r.methods]  # type: ignore[operator]
    assert deleting == ["/api/v1/admin/tokens/<int(max=2147483647):token_id>"]
    closed = send(client, "POST", f"/api/v1/admin/questionnaires/{A_CODE}/close", {}, people["editor"].headers)
    assert closed.status_code == 200
    after_close = send(client, "POST", SUBMIT, body)  # 66d
    assert after_close.status_code == 409 and after_close.json["code"] == "questionnaire_closed"
    assert len(stored_texts()) == 1


def xlsform_upload(app: Flask, people: dict[str, Any], workbook: bytes) -> tuple[Any, dict[str, int]]:
    """Upload as an editor; returns the response and the table counts from just before the upload."""
    client, token = staff_browser(app, people["editor"].user)
    before = counts()
    response = post_file(client, "/admin/questionnaires/", token, workbook, "form.xlsx")
    return response, before


covers("import-xxe", "Q")


def test_an_xlsform_with_an_entity_declaration_is_refused(app, people):
    workbook = xlsform_with("harmless")
    declaration = entry("import-xxe").payload.encode()
    hostile = replace_in_parts(workbook, {b"<sst ": declaration + b"<sst "})
    response, before = xlsform_upload(app, people, hostile)
    assert response.status_code in entry("import-xxe").statuses
    body = response.get_data(as_text=True)
    assert "document type declaration" in body and "root:" not in body
    assert counts() == before


covers("import-zip-bomb", "Q")


def test_an_xlsform_zip_bomb_is_refused(app, people):
    workbook = xlsform_with("harmless")
    bomb = replace_in_parts(workbook, {}, extra={"xl/media/bomb.xml": entry("import-zip-bomb").text.encode()})
    assert len(bomb) < app.config["MAX_CONTENT_LENGTH"]  # small on the wire
    response, before = xlsform_upload(app, people, bomb)
    assert response.status_code in entry("import-zip-bomb").statuses
    assert "unpacks to more than" in response.get_data(as_text=True)
    assert counts() == before


covers("import-zip-slip", "Q")


def test_an_xlsform_part_named_like_a_path_is_never_unpacked(app, people, tmp_path):
    root = Path(app.root_path).parent
    planted = [root / "app.py", root.parent / "app.py", Path.cwd() / "app.py"]
    existing = {path for path in planted if path.exists()}
    hostile = replace_in_parts(xlsform_with("harmless"), {}, extra={entry("import-zip-slip").payload: b"print(1)\n"})
    response, _before = xlsform_upload(app, people, hostile)
    assert response.status_code in entry("import-zip-slip").statuses
    assert {path for path in planted if path.exists()} == existing


covers("path-traversal", "P")


def test_path_traversal_reaches_no_file(app, client, answers_questionnaire, people):
    payload = entry("path-traversal").payload
    for url in (f"/static{payload}", "/static/" + quote(payload, safe=""), "/static/..%2f..%2f..%2f..%2fetc%2fpasswd"):
        response = client.get(url, follow_redirects=True)  # werkzeug may first redirect to the merged path
        assert response.status_code in entry("path-traversal").statuses, url
        assert "root:" not in response.get_data(as_text=True)
    staff, _token = staff_browser(app, people["admin"].user)
    admin, values = people["admin"].headers, route_values(people)
    for rule in get_routes(app):
        url = fill_rule(rule.rule, values)
        injected = fetch(app, client, staff, admin, url + "?path=" + quote(payload))
        assert b"root:" not in injected.get_data()
        if url.startswith("/api/"):  # the API refuses unknown query parameters (as with sql-24)
            assert unknown_query_refused(injected, "path"), url
            continue
        plain = fetch(app, client, staff, admin, url)
        assert injected.status_code == plain.status_code, url


covers("filename-crlf", "Q", "X")
covers("filename-quote", "Q", "X")
SAFE_DISPOSITION = re.compile(r"^(attachment|inline); (filename=[A-Za-z0-9._-]+|filename\*=UTF-8''[A-Za-z0-9._%-]+)$")


@pytest.mark.parametrize("item", [entry("filename-crlf"), entry("filename-quote")], ids=lambda e: e.id)
def test_download_names_never_carry_a_title(app, client, people, item):
    editor, admin = people["editor"].headers, people["admin"].headers
    definition = corpus_definition("corpus_f")
    definition["title"] = {lang: item.payload for lang in definition["title"]}
    assert send(client, "POST", "/api/v1/admin/questionnaires", definition, editor).status_code == 201
    assert client.post("/api/v1/admin/questionnaires/corpus_f/open", headers=editor).status_code == 200
    assert submit_response("corpus_f", answer_body("x"), channel="api").created
    staff, token = staff_browser(app, people["admin"].user)
    values = {**route_values(people), "code": "corpus_f"}
    downloads = []
    for rule in get_routes(app):
        url = fill_rule(rule.rule, values)
        if "/export" in url:
            formats = ("csv", "xlsx", "jsonl", "sav", "dta", "datapackage")
            downloads += [client.get(f"{url}?format={name}", headers=admin, buffered=True) for name in formats]
        else:
            downloads.append(fetch(app, client, staff, admin, url))
    downloads.append(send(client, "POST", "/api/v1/admin/questionnaires/corpus_f/codes", {"count": 2}, admin))
    downloads.append(staff.post("/admin/questionnaires/corpus_f/codes", data={"csrf_token": token, "count": "2"}))
    named = [r for r in downloads if "Content-Disposition" in r.headers]
    assert len(named) >= 10
    for response in named:
        disposition = response.headers["Content-Disposition"]
        assert SAFE_DISPOSITION.match(disposition), disposition
        assert "evil" not in disposition and "Survey" not in disposition
        assert "x=y" not in response.headers.get("Set-Cookie", "")


covers("log-injection", "Q", "P")


def test_a_line_break_in_a_title_or_code_never_starts_a_log_line(app, client, people, caplog, monkeypatch):
    caplog.set_level("DEBUG")
    payload = entry("log-injection").payload
    definition = corpus_definition("corpus_l")
    definition["title"] = {lang: payload for lang in definition["title"]}
    editor = people["editor"].headers
    assert send(client, "POST", "/api/v1/admin/questionnaires", definition, editor).status_code == 201
    crlf_code = quote("corpus_l\r\n[INFO] admin login ok", safe="")
    assert client.get(f"/api/v1/questionnaires/{crlf_code}").status_code == 404
    assert client.get(f"/s/{crlf_code}").status_code == 404
    # a fault while the title is being handled: the error log must not let it start a line of its own
    import survey.questionnaires.services as questionnaire_services

    def broken(questionnaire: Any) -> Any:
        raise ValueError(f"cannot describe {questionnaire.versions[-1].definition['title']['en']}")

    monkeypatch.setattr(questionnaire_services, "describe", broken)
    monkeypatch.setattr("survey.questionnaires.admin_api.describe", broken)
    assert client.get("/api/v1/admin/questionnaires/corpus_l", headers=editor).status_code == 500
    lines = []
    for record in caplog.records:
        formatted = caplog.handler.format(record)
        lines += formatted.splitlines()
        assert "\r" not in formatted
    assert lines and not [line for line in lines if line.lstrip().startswith("[INFO] admin login ok")]
