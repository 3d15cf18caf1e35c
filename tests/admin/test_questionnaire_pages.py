"""The questionnaire staff pages: the lifecycle through the pages, read-only analysts, uploads and their
problems, translations, participation codes, downloads, the preview, and escaping of every text (S10)."""

from __future__ import annotations

import csv
import io
import json
from html.parser import HTMLParser

import pytest
from sqlalchemy import func, select

from survey.accounts.models import AuditEvent
from survey.db import db
from survey.questionnaires import services
from survey.questionnaires.admin_api import describe
from survey.responses.models import Response
from tests.admin.pages import log_in, upload
from tests.factories import LANGS, all_types_definition, submission
from tests.staff import make_staff

Q = "/admin/questionnaires"
XSS = '"><script>alert(1)</script>'
ESCAPED = "&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"


@pytest.fixture
def people(app):
    return make_staff()


def post(client, url, token, **data):
    return client.post(url, data={"csrf_token": token, **data})


def page_of(client, url) -> str:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return response.get_data(as_text=True)


def stored(code: str = "all_types") -> dict:
    db.session.expire_all()
    return describe(services.get_questionnaire(code))


def respond(client, **extra) -> int:
    return client.post("/api/v1/questionnaires/all_types/responses", json=submission(**extra)).status_code


def test_an_editor_takes_a_questionnaire_from_upload_to_a_corrected_second_version(client, people):
    token = log_in(client, people["editor"].user)
    created = client.post(f"{Q}/", data={"csrf_token": token, "definition": upload(all_types_definition())})
    assert created.status_code == 303 and created.headers["Location"] == f"{Q}/all_types"
    page = page_of(client, f"{Q}/all_types")
    assert "Created the draft questionnaire all_types." in page
    assert 'class="status status-draft"' in page
    assert f'action="{Q}/all_types/open"' in page and f'action="{Q}/all_types/close"' not in page

    assert post(client, f"{Q}/all_types/open", token).status_code == 303
    assert (stored()["status"], stored()["current_version"]) == ("open", 1)
    page = page_of(client, f"{Q}/all_types")
    assert f'action="{Q}/all_types/close"' in page and f'action="{Q}/all_types/open"' not in page
    assert respond(client) == 201
    illegal = post(client, f"{Q}/all_types/archive", token)  # not offered while open, and refused
    assert illegal.status_code == 409 and stored()["status"] == "open"

    assert post(client, f"{Q}/all_types/close", token).status_code == 303
    assert stored()["status"] == "closed"
    assert respond(client) == 409
    page = page_of(client, f"{Q}/all_types")
    assert f'action="{Q}/all_types/reopen"' in page and f'action="{Q}/all_types/archive"' in page

    corrected = all_types_definition()
    corrected["sections"][0]["questions"][0]["text"]["en"] = "Have you heard of the agreements? (corrected)"
    assert post(client, f"{Q}/all_types/draft", token, definition=upload(corrected)).status_code == 303
    assert (stored()["current_version"], stored()["draft_version"]) == (1, 2)
    assert post(client, f"{Q}/all_types/publish", token).status_code == 303
    assert post(client, f"{Q}/all_types/reopen", token).status_code == 303
    assert respond(client) == 201

    final = stored()
    assert (final["status"], final["current_version"], final["draft_version"]) == ("open", 2, None)
    assert [(v["number"], v["responses"]) for v in final["versions"]] == [(1, 1), (2, 1)]
    preview = page_of(client, f"{Q}/all_types/versions/2/preview?lang=en&page=1")
    assert "(corrected)" in preview
    assert "(corrected)" not in page_of(client, f"{Q}/all_types/versions/1/preview?lang=en&page=1")
    listed = page_of(client, f"{Q}/")
    assert '<td class="num">2</td>' in listed  # current version and response count in the list
    actions = db.session.scalars(
        select(AuditEvent.action).where(AuditEvent.actor == "editor@example.org", AuditEvent.object_id == "all_types")
    ).all()
    assert actions == [
        "questionnaire.create",
        "questionnaire.publish",
        "questionnaire.open",
        "questionnaire.close",
        "questionnaire.draft",
        "questionnaire.publish",
        "questionnaire.open",
    ]


def test_an_analyst_can_look_but_cannot_change_anything(client, people):
    questionnaire = services.create_questionnaire(all_types_definition())
    services.open_questionnaire(questionnaire)
    services.save_draft(questionnaire, all_types_definition())
    token = log_in(client, people["analyst"].user)
    before = stored()
    events_before = db.session.scalar(select(func.count()).select_from(AuditEvent))

    page = page_of(client, f"{Q}/all_types")
    assert page.count('method="post"') == 1  # only the logout button: no action is offered
    assert "Upload" not in page_of(client, f"{Q}/")
    attempts = {
        f"{Q}/": {"definition": upload(all_types_definition("other"))},
        f"{Q}/all_types/settings": {"results_public": "yes"},
        f"{Q}/all_types/publish": {},
        f"{Q}/all_types/open": {},
        f"{Q}/all_types/close": {},
        f"{Q}/all_types/reopen": {},
        f"{Q}/all_types/archive": {},
        f"{Q}/all_types/draft": {"definition": upload(all_types_definition())},
        f"{Q}/all_types/draft/cyrillic": {},
        f"{Q}/all_types/codes": {"count": "5"},
        "/admin/users": {"email": "x@example.org", "name": "X", "role": "admin", "password": "x" * 20},
        f"/admin/users/{people['analyst'].user.id}": {"role": "admin"},
    }
    for url, data in attempts.items():
        assert post(client, url, token, **data).status_code == 403, url

    assert stored() == before
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)) == events_before
    assert db.session.get(type(people["analyst"].user), people["analyst"].user.id).role == "analyst"


def test_upload_problems_are_listed_with_their_paths_and_nothing_is_created(client, people):
    token = log_in(client, people["editor"].user)
    broken = all_types_definition("broken")
    broken["sections"][0]["questions"][1]["code"] = "heard"  # a duplicate question code
    broken["sections"][1]["questions"][0]["type"] = "no_such_type"
    response = post(client, f"{Q}/", token, definition=upload(broken))
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "sections[0].questions[1].code: duplicate question code &#39;heard&#39;" in page
    assert "sections[1].questions[0]" in page

    not_json = post(client, f"{Q}/", token, definition=upload(b'{"code": "a", "code": "<b>x</b>"}'))
    assert not_json.status_code == 422
    assert "Duplicate key &#39;code&#39;" in not_json.get_data(as_text=True)
    assert post(client, f"{Q}/", token).status_code == 422  # no file chosen
    assert post(client, f"{Q}/", token, definition=upload(all_types_definition("dialogue_2022"))).status_code == 409
    too_big = post(client, f"{Q}/", token, definition=upload(b" " * (300 * 1024)))
    assert too_big.status_code == 413
    assert "broken" not in page_of(client, f"{Q}/")


def test_publishing_an_incomplete_draft_shows_what_is_missing(client, people):
    definition = all_types_definition()
    definition["sections"][1]["title"].pop("sq")
    definition["title"]["sr-Latn"] = "Đorđe i Ljubica"
    del definition["title"]["sr-Cyrl"]
    services.create_questionnaire(definition)
    token = log_in(client, people["editor"].user)

    page = page_of(client, f"{Q}/all_types")
    assert "<code>sections[1].title</code>" in page and "<code>title</code>" in page
    refused = post(client, f"{Q}/all_types/open", token)
    assert refused.status_code == 422
    assert "sections[1].title.sq: missing translation" in refused.get_data(as_text=True)
    assert stored()["status"] == "draft"

    assert post(client, f"{Q}/all_types/draft/cyrillic", token).status_code == 303
    assert "Filled 1 Serbian Cyrillic texts" in page_of(client, f"{Q}/all_types")
    title = services.draft_version(services.get_questionnaire("all_types")).definition["title"]
    assert title["sr-Cyrl"] == "Ђорђе и Љубица"


def test_settings_are_checked_and_saved(client, people):
    services.create_questionnaire(all_types_definition())
    token = log_in(client, people["editor"].user)
    bad = post(client, f"{Q}/all_types/settings", token, opens_on="2030-02-01", closes_on="2030-01-01")
    assert bad.status_code == 422 and "must not be before" in bad.get_data(as_text=True)
    assert post(client, f"{Q}/all_types/settings", token, opens_on="1 March").status_code == 422
    assert stored()["opens_on"] is None
    saved = post(client, f"{Q}/all_types/settings", token, results_public="yes", closes_on="2030-01-31")
    assert saved.status_code == 303
    view = stored()
    assert (view["results_public"], view["requires_code"], str(view["closes_on"])) == (True, False, "2030-01-31")
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "questionnaire.settings"))
    assert event.details == {"results_public": "True", "closes_on": "2030-01-31"}


def test_participation_codes_are_downloaded_once_as_csv(client, people):
    services.create_questionnaire(all_types_definition())
    token = log_in(client, people["editor"].user)
    assert post(client, f"{Q}/all_types/codes", token, count="0").status_code == 422
    assert stored()["requires_code"] is False
    response = post(client, f"{Q}/all_types/codes", token, count="4")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == "attachment; filename=all_types-codes.csv"
    assert response.headers["Cache-Control"] == "no-store"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0] == ["participation_code"] and len(rows) == 5
    assert stored()["requires_code"] is True


def test_versions_download_as_json_and_xlsform(client, people):
    xlsform = pytest.importorskip("survey.questionnaires.xlsform")
    token = log_in(client, people["editor"].user)
    workbook = xlsform.xlsform_from_definition(all_types_definition())
    created = post(client, f"{Q}/", token, definition=upload(workbook, "all_types.xlsx"))
    assert created.status_code == 303, created.get_data(as_text=True)
    as_json = client.get(f"{Q}/all_types/versions/1.json")
    assert as_json.headers["Content-Disposition"] == "attachment; filename=all_types-v1.json"
    assert json.loads(as_json.get_data()) == services.get_questionnaire("all_types").versions[0].definition
    as_xlsx = client.get(f"{Q}/all_types/versions/1.xlsx")
    assert as_xlsx.status_code == 200 and as_xlsx.data.startswith(b"PK")
    assert xlsform.definition_from_xlsform(as_xlsx.data)["code"] == "all_types"
    assert client.get(f"{Q}/all_types/versions/2.json").status_code == 404


def test_a_preview_shows_every_page_in_every_language_and_stores_nothing(client, people):
    questionnaire = services.create_questionnaire(all_types_definition())
    services.open_questionnaire(questionnaire)
    log_in(client, people["analyst"].user)
    for lang in LANGS:
        for page in range(3):
            body = page_of(client, f"{Q}/all_types/versions/1/preview?lang={lang}&page={page}")
            assert f"[{lang}]" in body
            assert '<fieldset class="preview-frame" disabled>' in body
            assert body.count("<form") == 1 and 'action="/s/' not in body  # only the logout form
            assert f'<html lang="{lang}">' in body
    last = page_of(client, f"{Q}/all_types/versions/1/preview?page=99")
    assert "About you [en]" in last and '<button type="button" class="primary" disabled>' in last
    assert db.session.scalar(select(func.count()).select_from(Response)) == 0
    assert client.get(f"{Q}/all_types/versions/7/preview").status_code == 404
    assert client.get(f"{Q}/nope/versions/1/preview").status_code == 404


class _Markup(HTMLParser):
    """What an HTML5 parser finds: script elements and event-handler attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts = 0
        self.handlers: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.scripts += tag == "script"
        self.handlers += [name for name, _value in attrs if name.startswith("on")]


def test_questionnaire_texts_render_inert_on_the_list_detail_and_preview(client, people):
    definition = all_types_definition("xss_test")
    definition["title"] = {lang: f"Title {XSS}" for lang in LANGS}
    definition["sections"][0]["title"]["en"] = XSS
    definition["sections"][0]["questions"][0]["text"]["en"] = XSS
    definition["sections"][0]["questions"][0]["options"][0]["label"]["en"] = XSS
    definition["consent"]["text"]["sq"] = XSS
    token = log_in(client, people["editor"].user)
    assert post(client, f"{Q}/", token, definition=upload(definition)).status_code == 303

    pages = [
        f"{Q}/",
        f"{Q}/xss_test",
        f"{Q}/xss_test/versions/1/preview?lang=en&page=1",
        f"{Q}/xss_test/versions/1/preview?lang=sq&page=0",
    ]
    for url in pages:
        body = page_of(client, url)
        parsed = _Markup()
        parsed.feed(body)
        assert parsed.scripts == 0 and parsed.handlers == [], url
        assert XSS not in body and ESCAPED in body, url
