"""The public form pages through the test client: languages, every type, paging, errors, once-only."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from survey.db import db, unit_of_work
from survey.questionnaires.models import Question
from survey.questionnaires.services import create_questionnaire, get_questionnaire, open_questionnaire
from survey.responses.models import Answer, Response
from tests.factories import all_types_definition, opt, t
from tests.webform import FormSession


@pytest.fixture
def all_types(app):
    return open_questionnaire(create_questionnaire(all_types_definition()))


def responses() -> int:
    return db.session.scalar(select(func.count()).select_from(Response))


def fill_all_types(form: FormSession) -> None:
    """Walk every page of the all-types questionnaire with valid answers, ending on the last page."""
    form.post(q__consent="yes")
    form.post(q__heard="yes")  # reveals 'which' on the same page: shown before moving on
    assert "which" in form.visible_fieldsets()
    form.post(
        q__which=["a", "b"],
        q__support="agree",
        q__grid__r1="agree",
        q__grid__r2="dont_know",
        q__score="6",
        q__priorities__rank__1="p3",
        q__priorities__rank__2="p1",
        q__household="4",
        q__comment="Prishtinë ✓",
    )
    assert "story" in form.visible_fieldsets()  # revealed by 'support' on the same page
    form.post(q__story="Line one\r\nЂорђе 😀")


CHROME = {
    "en": ("Have your say", "Next", "Page 1 of"),
    "sq": ("Thuajeni mendimin tuaj", "Vazhdo", "Faqja 1 nga"),
    "sr-Latn": ("Recite svoje mišljenje", "Dalje", "Strana 1 od"),
    "sr-Cyrl": ("Реците своје мишљење", "Даље", "Страна 1 од"),
}
TITLES = {
    "en": "Your Voice on the Dialogue",
    "sq": "Zëri juaj për dialogun",
    "sr-Latn": "Vaš glas o dijalogu",
    "sr-Cyrl": "Ваш глас о дијалогу",
}


@pytest.mark.parametrize("lang", list(CHROME))
def test_pages_speak_each_language(client, lang):
    heading, next_button, progress = CHROME[lang]
    index = client.get(f"/?lang={lang}").get_data(as_text=True)
    assert heading in index and TITLES[lang] in index
    form = FormSession(client, "dialogue_2022", lang)
    assert f'<html lang="{lang}">' in form.page
    assert TITLES[lang] in form.page and next_button in form.page and progress in form.page


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("sr-Cyrl-RS,sr;q=0.9", "sr-Cyrl"),
        ("sr-Latn-RS", "sr-Latn"),
        ("sq-AL,en;q=0.5", "sq"),
        ("sr", "sr-Cyrl"),
        ("hr-HR", "sr-Latn"),
        ("de-DE", "en"),
    ],
)
def test_browser_language_is_used_unless_asked(client, header, expected):
    page = client.get("/s/dialogue_2022", headers={"Accept-Language": header}).get_data(as_text=True)
    assert f'<html lang="{expected}">' in page
    asked = client.get("/s/dialogue_2022?lang=sq", headers={"Accept-Language": header}).get_data(as_text=True)
    assert '<html lang="sq">' in asked


def test_every_question_type_from_form_to_database(client, all_types):
    form = FormSession(client, "all_types", "sq")
    fill_all_types(form)
    assert form.response.status_code == 200, form.page
    assert form.legends() == ["Community [sq]"] and "Dërgo" in form.page  # last page: Submit
    final = form.post(q__community="x")
    assert final.status_code == 303
    assert final.headers["Location"].endswith("/s/all_types/thanks?lang=sq")
    stored = db.session.scalar(select(Response))
    assert (stored.language, stored.channel) == ("sq", "web")
    texts = sorted(db.session.scalars(select(Answer.text).where(Answer.text.is_not(None))))
    assert texts == ["Line one\nЂорђе 😀", "Prishtinë ✓"]
    assert db.session.scalar(select(func.count()).select_from(Answer)) == 14
    thanks = client.get(final.headers["Location"]).get_data(as_text=True)
    assert "Faleminderit" in thanks


def test_resending_the_last_page_stores_one_response(client, all_types):
    form = FormSession(client, "all_types")
    fill_all_types(form)
    last_page_fields = dict(form.hidden)
    assert form.post(q__community="x").status_code == 303
    form.response = client.post("/s/all_types", data={**last_page_fields, "action": "next", "q-community": "x"})
    assert form.response.status_code == 303  # a replay: acknowledged again
    assert responses() == 1


def test_two_tabs_are_two_respondents(client, all_types):
    first, second = FormSession(client, "all_types"), FormSession(client, "all_types")
    assert first.hidden["submission_id"] != second.hidden["submission_id"]


def test_errors_are_listed_linked_and_localised_and_nothing_typed_is_lost(client, all_types):
    form = FormSession(client, "all_types", "sr-Latn")
    form.post(q__consent="yes")
    form.post(q__heard="yes")
    response = form.post(q__which=["a", "b", "c"], q__score="5", q__comment="zadržan tekst", q__household="četiri")
    assert response.status_code == 422
    page = form.page
    summary = re.search(r'<div class="error-summary".*?</div>', page, re.S).group(0)
    for code in ("which", "support", "score", "household"):
        assert f'href="#q-{code}"' in summary
    assert "Izaberite najviše 2." in page and "Odgovor je obavezan." in page and "Mora biti broj." in page
    assert 'value="zadržan tekst"' in page and 'value="četiri"' in page
    assert len(re.findall(r'name="q-which" value="[a-z]+" checked', page)) == 3  # the three boxes stay ticked
    assert responses() == 0


def test_language_switch_keeps_answers_and_page(client, all_types):
    form = FormSession(client, "all_types", "en")
    form.post(q__consent="yes")
    form.post(action="lang:sr-Cyrl", q__heard="yes")
    assert '<html lang="sr-Cyrl">' in form.page
    assert "Heard? [sr-Cyrl]" in form.legends()[0]
    assert re.search(r'name="q-heard" value="yes" checked', form.page)


def test_back_keeps_answers(client, all_types):
    form = FormSession(client, "all_types")
    form.post(q__consent="yes")
    form.post(q__heard="no")
    form.post(action="back", q__support="neutral")
    assert form.legends()[0].startswith("Do you agree? [en]")  # back on the consent page
    form.post(action="next")
    assert re.search(r'value="neutral" checked', form.page)


def test_declining_consent_stores_nothing(client, all_types):
    form = FormSession(client, "all_types", "sq")
    response = form.post(q__consent="no")
    assert response.status_code == 200
    assert "Asgjë nuk është ruajtur" in form.page
    assert responses() == 0


def test_consent_is_required(client, all_types):
    form = FormSession(client, "all_types")
    assert form.post().status_code == 422
    assert "Consent is required to take part." in form.page


def test_changing_an_earlier_answer_drops_answers_it_hides(client, all_types):
    form = FormSession(client, "all_types")
    fill_all_types(form)
    form.post(action="back", q__community="x")
    form.post(q__heard="no")  # hides 'which', answered earlier with a and b
    assert "which" not in form.visible_fieldsets()
    assert form.post(q__community="y").status_code == 303
    assert responses() == 1
    which = db.session.scalar(
        select(func.count())
        .select_from(Answer)
        .where(Answer.seq >= 0, Answer.question_id.in_(select(Question.id).where(Question.code == "which")))
    )
    assert which == 0


def test_honeypot_pretends_success_and_stores_nothing(client, all_types):
    form = FormSession(client, "all_types")
    fill_all_types(form)
    assert form.post(q__community="x", website="http://spam.example").status_code == 303
    assert responses() == 0


def test_post_without_csrf_token_is_refused_in_the_respondents_language(client, all_types):
    form = FormSession(client, "all_types", "sq")
    fields = {**form.hidden, "csrf_token": "forged", "q-consent": "yes"}
    response = client.post("/s/all_types", data=fields, headers={"Accept": "text/html"})
    assert response.status_code == 400
    assert "ringarkoni faqen" in response.get_data(as_text=True)


def test_cross_site_post_is_refused(client, all_types):
    form = FormSession(client, "all_types")
    response = client.post(
        "/s/all_types", data={**form.hidden, "q-consent": "yes"}, headers={"Origin": "https://evil.example"}
    )
    assert response.status_code == 403


def test_closed_questionnaire_shows_a_message(client, all_types):
    with unit_of_work():
        get_questionnaire("all_types").close()
    response = client.get("/s/all_types?lang=sr-Latn")
    assert response.status_code == 409
    assert "Ovaj upitnik trenutno ne prima odgovore." in response.get_data(as_text=True)
    assert client.get("/s/nope").status_code == 404


def test_randomised_options_are_stable_per_respondent_with_pinned_last(client, app):
    definition = all_types_definition("shuffled")
    which = definition["sections"][0]["questions"][1]
    which["randomize_options"] = True
    which["options"] = [opt(f"o{i}") for i in range(8)] + [opt("none", exclusive=True, pin_last=True)]
    which.pop("max_choices")
    open_questionnaire(create_questionnaire(definition))
    orders = set()
    for _ in range(6):
        form = FormSession(client, "shuffled")
        form.post(q__consent="yes")
        form.post(q__heard="yes")
        order = re.findall(r'name="q-which" value="([a-z0-9_]+)"', form.page)
        assert order[-1] == "none" and sorted(order[:-1]) == [f"o{i}" for i in range(8)]
        form.post(action="lang:sq")
        assert re.findall(r'name="q-which" value="([a-z0-9_]+)"', form.page) == order  # stable
        orders.add(tuple(order))
    assert len(orders) > 1


def test_questionnaire_text_and_answers_are_escaped(client, app):
    payload = '"><script>alert(1)</script><img src=x onerror=alert(1)>'
    definition = all_types_definition("escaped")
    definition["title"] = t(payload)
    definition["consent"]["options"][0]["label"] = t("{{ 7*7 }} " + payload)
    open_questionnaire(create_questionnaire(definition))
    form = FormSession(client, "escaped")
    assert "<script>alert(1)" not in form.page and "onerror=alert" not in form.page.replace("onerror=alert(1)&gt;", "")
    assert "&lt;script&gt;" in form.page and "{{ 7*7 }}" in form.page
    form.post(q__consent="yes")
    form.post(q__heard="yes")
    form.post(q__support="agree", q__comment=payload[:20])
    assert "<script>" not in form.page


def test_pages_set_no_persistent_cookie_and_strict_headers(client, all_types):
    index = client.get("/")
    assert "Set-Cookie" not in index.headers
    page = client.get("/s/all_types")
    cookie = page.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Expires" not in cookie and "Max-Age" not in cookie  # ends with the browser session
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert "<script>" not in page.get_data(as_text=True)  # no inline script at all
    stylesheet = client.get("/static/survey.css")
    assert stylesheet.status_code == 200 and stylesheet.headers["X-Content-Type-Options"] == "nosniff"
    stylesheet.close()


def test_unknown_page_is_an_html_page_for_browsers(client):
    response = client.get("/no/such/page?lang=sq", headers={"Accept": "text/html"})
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert "Faqja nuk u gjet." in response.get_data(as_text=True)
