"""Languages: choosing the respondent's language, translating page chrome, Serbian transliteration.

Questionnaire texts carry their own translations (BCP 47 tags: ``en``, ``sq``, ``sr-Latn``,
``sr-Cyrl``); the pages' own words come from Flask-Babel catalogs (``survey/translations``), whose
locale names are the same tags with an underscore (``sr_Latn``). The JSON API always speaks English.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po
from flask import Flask, has_request_context, request
from flask_babel import Babel, refresh
from flask_babel import gettext as babel_gettext

LANGUAGES = ("en", "sq", "sr-Latn", "sr-Cyrl")
LANGUAGE_NAMES = {"en": "English", "sq": "Shqip", "sr-Latn": "Srpski (latinica)", "sr-Cyrl": "Српски (ћирилица)"}
SERBIAN_DEFAULT_SCRIPT = "sr-Cyrl"  # CLDR default; browsers send sr-Latn when they mean Latin

babel = Babel()


def gettext(message: str, **variables: Any) -> str:
    """Translate into the request's language; English (with the variables filled in) otherwise."""
    if has_request_context():
        return babel_gettext(message, **variables)
    return message % variables if variables else message


def negotiate(accept_language: str | None, available: Sequence[str]) -> str | None:
    """The best of ``available`` for an ``Accept-Language`` header, or None.

    Werkzeug's and Babel's matchers get our languages wrong (``sr-Cyrl-RS`` → Latin, ``sq-AL`` →
    English, a bare ``sr`` → nothing), so the tags are matched here: same language and, for Serbian,
    the script the tag names, else the region's usual script, else the project default.
    """
    if not accept_language:
        return None
    weighted = []
    for position, part in enumerate(accept_language.split(",")):
        tag, _sep, params = part.strip().partition(";")
        quality = 1.0
        match = re.search(r"q=([^;]*)", params)
        if match:
            try:
                quality = float(match.group(1))
            except ValueError:
                continue
        if tag and quality > 0:
            weighted.append((-quality, position, tag.strip()))
    for _q, _p, tag in sorted(weighted):
        found = match_tag(tag, available)
        if found:
            return found
    return None


# Serbo-Croatian, Bosnian, Croatian, Montenegrin readers read Serbian Latin most easily.
_LATIN_NEIGHBOURS = ("sh", "bs", "hr", "cnr")


def match_tag(tag: str, available: Iterable[str]) -> str | None:
    available = list(available)
    lowered = {a.lower(): a for a in available}
    if tag.lower() in lowered:
        return lowered[tag.lower()]
    subtags = tag.replace("_", "-").lower().split("-")
    language = subtags[0]
    if language in ("sr", *_LATIN_NEIGHBOURS):
        script = next((s for s in subtags[1:] if s in ("latn", "cyrl")), None)
        if script is None and language in _LATIN_NEIGHBOURS:
            script = "latn"
        wanted = f"sr-{script.capitalize()}" if script else SERBIAN_DEFAULT_SCRIPT
        candidates = [wanted, SERBIAN_DEFAULT_SCRIPT, "sr-Latn", "sr-Cyrl", "sr"]
        return next((lowered[c.lower()] for c in candidates if c.lower() in lowered), None)
    if language == "*":
        return None
    return next((a for a in available if a.lower().split("-")[0] == language), None)


def use_language(available: Sequence[str], asked: str | None, default: str) -> str:
    """Pick the page language: ``asked`` (``?lang=`` or the form's field) if available, then the
    browser's Accept-Language, then ``default``; and make it the locale of this request's pages."""
    if asked in available:
        language = asked
    else:
        language = negotiate(request.headers.get("Accept-Language"), available) or default
    request.survey_language = language  # type: ignore[attr-defined]  # read by _select_locale
    refresh()  # forget a locale Babel may have cached earlier in this request
    return language


def translated(texts: dict[str, str] | None, language: str, fallback: str = "en") -> str:
    """A questionnaire text in ``language``, else in the questionnaire's default language."""
    if not texts:
        return ""
    return texts.get(language) or texts.get(fallback) or next(iter(texts.values()), "")


def babel_locale(tag: str) -> str:
    return tag.replace("-", "_")


def _select_locale() -> str:
    """The language of the page: the view decides and stores it in ``request.survey_language``."""
    if request.path.startswith("/api/"):
        return "en"
    return babel_locale(getattr(request, "survey_language", None) or "en")


def init_app(app: Flask) -> None:
    app.jinja_env.filters["tr"] = translated
    babel.init_app(
        app,
        locale_selector=_select_locale,
        default_translation_directories="translations",
        default_domain="messages",
    )


TRANSLATIONS = Path(__file__).parent / "translations"


def compile_catalogs(directory: Path = TRANSLATIONS) -> list[Path]:
    """Compile every ``messages.po`` into the ``messages.mo`` Flask-Babel reads (build output)."""
    written = []
    for po_path in sorted(directory.glob("*/LC_MESSAGES/messages.po")):
        with po_path.open("rb") as source:
            catalog = read_po(source, locale=po_path.parent.parent.name)
        mo_path = po_path.with_suffix(".mo")
        with mo_path.open("wb") as target:
            write_mo(target, catalog)
        written.append(mo_path)
    return written


def write_cyrillic_catalog(directory: Path = TRANSLATIONS) -> Path:
    """Make ``sr_Cyrl/messages.po`` from ``sr_Latn/messages.po`` by transliteration.

    The Serbian Cyrillic page texts are never edited by hand: fix the Latin and run this again.
    """
    with (directory / "sr_Latn" / "LC_MESSAGES" / "messages.po").open("rb") as source:
        latin = read_po(source, locale="sr_Latn")
    cyrillic = Catalog(locale="sr_Cyrl", project=latin.project, version=latin.version)
    for message in latin:
        if not message.id:
            continue
        text = message.string
        converted = tuple(map(latin_to_cyrillic, text)) if isinstance(text, tuple) else latin_to_cyrillic(text)
        cyrillic.add(message.id, converted)
    target = directory / "sr_Cyrl" / "LC_MESSAGES" / "messages.po"
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as out:
        write_po(out, cyrillic, width=100)
    return target


# Serbian Latin → Cyrillic, letter for letter; the digraphs lj, nj, dž are single letters.
_DIGRAPHS = {"lj": "љ", "nj": "њ", "dž": "џ", "Lj": "Љ", "Nj": "Њ", "Dž": "Џ", "LJ": "Љ", "NJ": "Њ", "DŽ": "Џ"}
_LETTERS = dict(
    zip(
        "abvgdđežzijklmnoprstćufhcčšABVGDĐEŽZIJKLMNOPRSTĆUFHCČŠ",
        "абвгдђежзијклмнопрстћуфхцчшАБВГДЂЕЖЗИЈКЛМНОПРСТЋУФХЦЧШ",
        strict=True,
    )
)
_PLACEHOLDER = re.compile(r"%\([a-z_]+\)[sd]|%[sd]|\{[a-z_]*\}|<[^>]*>|https?://\S+")


def latin_to_cyrillic(text: str) -> str:
    """Transliterate Serbian Latin to Cyrillic, leaving placeholders, markup and URLs untouched.

    Words with a split digraph (``nadživeti``, ``konjunkcija``) are rare and need an editor's eye.
    """
    out = []
    position = 0
    for match in _PLACEHOLDER.finditer(text):
        out.append(_transliterate(text[position : match.start()]))
        out.append(match.group(0))
        position = match.end()
    out.append(_transliterate(text[position:]))
    return "".join(out)


def _transliterate(text: str) -> str:
    result = []
    index = 0
    while index < len(text):
        pair = text[index : index + 2]
        if pair in _DIGRAPHS:
            result.append(_DIGRAPHS[pair])
            index += 2
        else:
            result.append(_LETTERS.get(text[index], text[index]))
            index += 1
    return "".join(result)
