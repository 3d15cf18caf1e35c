"""End to end in a real browser: Debian's Chromium driven by Playwright against a live server.

A respondent fills the whole op-ed questionnaire in Albanian and in Serbian Cyrillic, with and
without JavaScript; every page met on the way is scanned with axe-core. Skipped when Chromium is
not installed, unless SURVEY_REQUIRE_BROWSER is set (CI sets it, so CI cannot skip silently).
"""

from __future__ import annotations

import os
import shutil
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from werkzeug.serving import make_server

from survey.responses.models import Answer, Response
from tests.conftest import fresh_database, make_app, migrate_and_seed

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

if not (CHROMIUM and AXE.exists()):
    if os.environ.get("SURVEY_REQUIRE_BROWSER"):
        pytest.fail("Chromium and node_modules/axe-core are required (apt-get install chromium; npm ci)", pytrace=False)
    pytest.skip("needs Chromium (apt-get install chromium) and axe-core (npm ci)", allow_module_level=True)

from playwright.sync_api import Browser, Page, sync_playwright  # noqa: E402

TEXT = {"sq": "Përshëndetje nga Prishtina, çka po ndodh? 😀", "sr-Cyrl": "Поздрав из Грачанице, Ђорђе Љубичић"}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """The app on a threaded local server with a migrated, seeded database of its own."""
    with fresh_database("sqlite", tmp_path_factory.mktemp("e2e")) as url:
        app = make_app(url)
        migrate_and_seed(app)
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_port}", url
        finally:
            server.shutdown()
            thread.join(timeout=10)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield browser
        browser.close()


def answer_visible_questions(page: Page, text: str) -> None:
    """Answer every shown question that has no answer yet, the way a hurried respondent would."""
    for fieldset in page.locator("fieldset.question:visible").all():
        radios = fieldset.locator("input[type=radio]")
        for name in dict.fromkeys(_names(radios)):
            group = fieldset.locator(f"input[type=radio][name='{name}']")
            if not any(group.nth(i).is_checked() for i in range(group.count())):
                group.first.check()
        boxes = fieldset.locator("input[type=checkbox]")
        if boxes.count() and not any(boxes.nth(i).is_checked() for i in range(boxes.count())):
            boxes.first.check()
        selects = fieldset.locator("select")
        for i in range(min(2, selects.count())):
            selects.nth(i).select_option(index=i + 1)
        for field in fieldset.locator("input[type=text]").all():
            if not field.input_value():
                field.fill("3" if field.get_attribute("inputmode") in ("numeric", "decimal") else text[:20])
        for area in fieldset.locator("textarea").all():
            if not area.input_value():
                area.fill(text)


def _names(radios) -> list[str]:
    return [radios.nth(i).get_attribute("name") or "" for i in range(radios.count())]


def scan(page: Page) -> list[dict]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    assert result["passes"], "axe checked nothing"
    return result["violations"]


def fill_questionnaire(page: Page, base: str, lang: str, audit: list | None = None) -> int:
    """Fill dialogue_2022 from its first page to the thanks page; returns the pages seen."""
    page.goto(f"{base}/s/dialogue_2022?lang={lang}")
    assert page.locator("html").get_attribute("lang") == lang
    seen = 0
    while "/thanks" not in page.url:
        seen += 1
        assert seen < 40, "the questionnaire did not end"
        if audit is not None:
            audit.extend(scan(page))
        answer_visible_questions(page, TEXT[lang])
        page.locator("button[name=action][value=next]").click()
        page.wait_for_load_state("domcontentloaded")
    return seen


def stored_web_responses(url: str) -> list[tuple[str, str]]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                select(Response.language, Answer.text)
                .join(Answer, Answer.response_id == Response.id)
                .where(Response.channel == "web", Answer.text.is_not(None))
            )
            return [tuple(row) for row in rows]
    finally:
        engine.dispose()


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
@pytest.mark.parametrize("lang", ["sq", "sr-Cyrl"])
def test_fill_the_op_ed_questionnaire(live, chromium, lang, javascript):
    base, url = live
    before = Counter(stored_web_responses(url))
    context = chromium.new_context(java_script_enabled=javascript, viewport={"width": 360, "height": 740})
    page = context.new_page()
    policy_errors: list[str] = []
    page.on("console", lambda m: policy_errors.append(m.text) if "Content Security Policy" in m.text else None)
    pages = fill_questionnaire(page, base, lang)
    assert pages >= 10
    thanks = page.locator("h1").inner_text()
    assert thanks in ("Faleminderit", "Хвала Вам")
    context.close()
    added = Counter(stored_web_responses(url)) - before
    assert added[(lang, TEXT[lang])] == 2  # both open questions, byte for byte
    assert policy_errors == []


def test_accessibility_of_every_form_page(live, chromium):
    base, _url = live
    context = chromium.new_context(bypass_csp=True, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    violations: list[dict] = []
    fill_questionnaire(page, base, "sq", audit=violations)
    page.goto(f"{base}/s/dialogue_2022?lang=sr-Cyrl")
    page.locator("button[name=action][value=next]").click()  # consent missing: the error state
    page.wait_for_load_state("domcontentloaded")
    assert page.locator(".error-summary").count() == 1
    violations.extend(scan(page))
    page.goto(f"{base}/?lang=sq")
    violations.extend(scan(page))
    context.close()
    impacts = Counter(v["impact"] for v in violations)
    print(f"axe violations by impact: {dict(impacts)}; rules: {sorted({v['id'] for v in violations})}")
    serious = [(v["id"], v["help"]) for v in violations if v["impact"] in ("serious", "critical")]
    assert serious == []
