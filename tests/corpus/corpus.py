"""The bad-input corpus (``bad_inputs.json``) and the checks every place shares.

:func:`entries` selects corpus entries by place and outcome; :func:`assert_inert` is the S10 check of a
rendered page (no ``<script>`` but the self-hosted ones, no ``on*`` attribute, no ``javascript:`` URL, no
frame or embedded object, and a payload with markup never appears unescaped); :func:`stored_form` is what the
service is documented to keep of a text (NFC, line breaks unified, outer white space trimmed).
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass, field
from functools import cache
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from tests.factories import LANGS

CORPUS = Path(__file__).with_name("bad_inputs.json")
PLACES = frozenset("AQBHPX")
OUTCOMES = frozenset({"inert", "literal", "neutralised", "roundtrip", "scrubbed", "rejected", "scenario"})
# Outcomes under which a text is accepted and stored.
STORED = frozenset({"inert", "literal", "neutralised", "roundtrip", "scrubbed"})


@dataclass(frozen=True)
class Entry:
    id: str
    cls: str
    ref: str
    payload: Any
    where: tuple[str, ...]
    expect: dict[str, Any]
    note: str = ""
    sent_as: str | None = None
    template: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def outcome(self) -> str:
        return self.expect["outcome"]

    @property
    def statuses(self) -> tuple[int, ...]:
        return tuple(self.expect.get("status", ()))

    @property
    def text(self) -> str:
        """The payload as one string (a repeat object expanded)."""
        return materialise(self.payload)

    @property
    def body(self) -> str:
        """The payload placed in its template, if it has one (a request body)."""
        return self.template.replace("{payload}", self.text) if self.template else self.text


def materialise(payload: Any) -> str:
    if isinstance(payload, dict) and set(payload) == {"repeat", "times"}:
        return payload["repeat"] * payload["times"]
    if isinstance(payload, str):
        return payload
    raise TypeError(f"not a text payload: {payload!r}")


@cache
def load() -> tuple[Entry, ...]:
    document = json.loads(CORPUS.read_text(encoding="utf-8"))
    known = {"id", "class", "ref", "payload", "where", "expect", "source", "note", "as", "template"}
    result = []
    for raw in document["entries"]:
        result.append(
            Entry(
                id=raw["id"],
                cls=raw["class"],
                ref=raw["ref"],
                payload=raw["payload"],
                where=tuple(raw["where"]),
                expect=raw["expect"],
                note=raw.get("note", ""),
                sent_as=raw.get("as"),
                template=raw.get("template"),
                extra={k: v for k, v in raw.items() if k not in known},
            )
        )
    return tuple(result)


def entry(entry_id: str) -> Entry:
    return next(e for e in load() if e.id == entry_id)


def entries(place: str, *, outcomes: frozenset[str] | set[str] | None = None, text: bool = True) -> list[Entry]:
    """Entries naming ``place``; only string (or repeat) payloads when ``text``."""
    found = []
    for candidate in load():
        if place not in candidate.where:
            continue
        if outcomes is not None and candidate.outcome not in outcomes:
            continue
        if text and not (isinstance(candidate.payload, str) or _is_repeat(candidate.payload)):
            continue
        found.append(candidate)
    return found


def _is_repeat(payload: Any) -> bool:
    return isinstance(payload, dict) and set(payload) == {"repeat", "times"}


def params(selected: list[Entry]) -> list[Any]:
    return [pytest.param(e, id=e.id) for e in selected]


def stored_form(text: str) -> str:
    """What the service keeps of a text it accepts (DESIGN: NFC, CRLF/CR → LF, outer white space trimmed)."""
    return unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n")).strip()


def is_formula_like(text: str) -> bool:
    """The spreadsheet trigger rule, written out here independently of survey.exports.cells."""
    for char in text:
        if char in "=+-@\t\r\n\0\uff1d\uff0b\uff0d\uff20\ufe62\ufe63\ufe66\ufe6b\u2212":
            return True
        if char.isspace() or unicodedata.category(char) == "Cf":
            continue
        return False
    return False


def in_every_language(text: str) -> dict[str, str]:
    return {lang: text for lang in LANGS}


# -- rendering checks -----------------------------------------------------------------------------

FRAMES = frozenset({"iframe", "frame", "frameset", "object", "embed", "base", "foreignobject", "applet"})
URL_SCHEMES = ("javascript:", "vbscript:", "data:text/html")


class PageScan(HTMLParser):
    """What an HTML parser finds in a page: scripts, handlers, dangerous URLs and frames, and its text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.texts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script":
            self._in_script = True
            if not (values.get("src") or "").startswith("/static/"):
                self.problems.append(f"<script> not from /static/: {attrs!r}")
        if tag in FRAMES:
            self.problems.append(f"<{tag}> element")
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"event handler attribute {name}={value!r} on <{tag}>")
            if name == "srcdoc":
                self.problems.append(f"srcdoc attribute on <{tag}>")
            squeezed = "".join(ch for ch in (value or "") if ch.isprintable() and not ch.isspace()).lower()
            if squeezed.startswith(URL_SCHEMES):
                self.problems.append(f"{name}={value!r} on <{tag}> is a script URL")
            if value:
                self.texts.append(value)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag == "script":
            self._in_script = False

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.problems.append(f"inline script content {data[:80]!r}")
        self.texts.append(data)


def scan(body: str) -> PageScan:
    parser = PageScan()
    parser.feed(body)
    parser.close()
    return parser


def assert_inert(body: str, payload: str, where: str) -> PageScan:
    """The page carries no active content; a payload with markup is never in it unescaped."""
    found = scan(body)
    assert not found.problems, f"{where}: {found.problems}"
    if "<" in payload:
        assert payload not in body, f"{where}: the payload appears unescaped"
        assert stored_form(payload) not in body, f"{where}: the payload appears unescaped"
    return found


def assert_shown(found: PageScan, text: str, where: str) -> None:
    """The (decoded) page text shows ``text``, in an element's text or an attribute value (compared in NFC:
    a form shows an answer back as it was typed, the database keeps its NFC form)."""
    shown = any(text in unicodedata.normalize("NFC", chunk) for chunk in found.texts)
    assert shown, f"{where}: {text[:60]!r} is not shown"
