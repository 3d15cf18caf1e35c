"""Language choice, the page-text catalogs, and Serbian transliteration."""

from __future__ import annotations

import pytest
from babel.messages.pofile import read_po

from survey.i18n import LANGUAGES, TRANSLATIONS, latin_to_cyrillic, negotiate, translated

AVAILABLE = list(LANGUAGES)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("sr-Cyrl-RS", "sr-Cyrl"),
        ("sr-Latn-RS,sr;q=0.8", "sr-Latn"),
        ("sr", "sr-Cyrl"),
        ("sr-RS", "sr-Cyrl"),
        ("sr-Latn-XK", "sr-Latn"),
        ("bs-BA", "sr-Latn"),
        ("sq-AL,en;q=0.5", "sq"),
        ("sq-XK", "sq"),
        ("de, sq;q=0.2", "sq"),
        ("en-GB,en;q=0.9", "en"),
        ("sr;q=0, sq;q=0.1", "sq"),
        ("fr-FR", None),
        ("*", None),
        ("", None),
        ("en;q=abc, sq", "sq"),
    ],
)
def test_accept_language_negotiation(header, expected):
    assert negotiate(header, AVAILABLE) == expected


def test_negotiation_only_offers_what_the_questionnaire_has():
    assert negotiate("sr-Cyrl", ["en", "sr-Latn"]) == "sr-Latn"
    assert negotiate("sq", ["en", "sr-Latn"]) is None


@pytest.mark.parametrize(
    ("latin", "cyrillic"),
    [
        ("Ljubičić, Njegoš, džep", "Љубичић, Његош, џеп"),
        ("LJUBAV NJIVA DŽEM", "ЉУБАВ ЊИВА ЏЕМ"),
        ("Đorđe Ćirić, Žarko Šćepanović", "Ђорђе Ћирић, Жарко Шћепановић"),
        ("EU i %(n)d odgovora", "ЕУ и %(n)d одговора"),
        ("Strana %(n)d od %(total)d", "Страна %(n)d од %(total)d"),
        ("<b>Da</b> https://example.org", "<b>Да</b> https://example.org"),
    ],
)
def test_serbian_latin_to_cyrillic(latin, cyrillic):
    assert latin_to_cyrillic(latin) == cyrillic


def test_every_page_text_is_translated_in_every_language():
    with (TRANSLATIONS / "messages.pot").open("rb") as source:
        wanted = {m.id for m in read_po(source) if m.id}
    assert len(wanted) > 50
    for locale in ("sq", "sr_Latn", "sr_Cyrl"):
        with (TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po").open("rb") as source:
            catalog = read_po(source, locale=locale)
        translated_ids = {
            m.id
            for m in catalog
            if m.id and (all(m.string) if isinstance(m.string, tuple) else m.string) and not m.fuzzy
        }
        assert wanted - translated_ids == set(), locale


def test_cyrillic_catalog_is_the_transliteration_of_the_latin_one():
    def load(locale):
        with (TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po").open("rb") as source:
            return {m.id: m.string for m in read_po(source, locale=locale) if m.id}

    latin, cyrillic = load("sr_Latn"), load("sr_Cyrl")
    for key, text in latin.items():
        expected = tuple(map(latin_to_cyrillic, text)) if isinstance(text, tuple) else latin_to_cyrillic(text)
        assert cyrillic[key] == expected


def test_translated_falls_back_to_the_default_language():
    texts = {"en": "Yes", "sq": "Po"}
    assert translated(texts, "sq", "en") == "Po"
    assert translated(texts, "sr-Cyrl", "en") == "Yes"
    assert translated(None, "sq") == ""
