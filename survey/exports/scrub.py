"""The free-text PII scrubber (promise P7): e-mails, URLs, phone numbers, IBANs and bank accounts,
personal numbers, each replaced by a bracketed token such as ``[email]``.

Respondents write contact details into comment boxes even when told not to. Exports scrub every
text answer with :func:`scrub_text` unless the caller explicitly asks for the raw text.

Detection runs on a *skeleton* of the text: invisible characters (zero-width spaces and joiners, soft
hyphens, word joiners, BOMs) are dropped and every character is NFKC-folded, so ``ex\\u200bample@mail.com``,
``+383\\u200c44 123 456`` and fullwidth ``０４４`` digits are seen as what they are. Each skeleton
position remembers where it came from, so only the matched span of the original is replaced and
everything else (an emoji's zero-width joiner included) is left byte for byte.

What counts as what (patterns are deliberately simple and favour recall; see the labelled corpus in
``tests/exports/test_scrub.py`` for the measured recall and precision):

- **email**: ``local@domain.tld``, also with ``[at]``/``(at)`` and ``[dot]``/``(dot)`` obfuscations,
  spelled ``name at domain dot com``, or ``name@gmail`` (a big provider without its TLD);
- **url**: ``http(s)://…``, ``www.…`` and bare ``domain.tld/…`` for common and regional TLDs; TLDs
  that are also words (``me``, ``se``, ``it``, ``at``…) only with a path, so that a missing space
  after a full stop ("vonë.Me", "tako.se") is not a URL;
- **iban**: two letters, two check digits and 11–30 more characters of which at least ten are digits
  (Kosovo ``XK`` 20, Serbia ``RS`` 22, Albania ``AL`` 28 …);
- **bank account**: the Serbian domestic form ``160-5100100000000-11``;
- **phone**: ``+`` or ``00`` then 8–15 digits (``+383``, ``+381`` and every other country), or a
  local number starting with ``0`` with 8–11 digits (``044 123 456``, ``049/123-456``,
  ``064 123 4567``, ``011 123 4567``), with spaces, dots, slashes, dashes or brackets between
  digits; also ``383…``/``381…`` without the ``+`` and mobiles without the ``0`` (``44 123 456``,
  ``64 123 4567``) unless they end in ``000`` (an amount); day dates such as ``01.02.2022`` are
  not phone numbers;
- **personal number**: 13 digits (Serbian JMBG) or 10 digits (Kosovo personal number), written
  without separators other than spaces, that are not a local phone number (``1.000.000.000`` is
  an amount, not a person).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

TOKENS = {
    "email": "[email]",
    "url": "[url]",
    "iban": "[iban]",
    "bank_account": "[bank-account]",
    "phone": "[phone]",
    "personal_number": "[personal-number]",
}

# Characters that render as nothing and are used to split a pattern so that filters miss it.
_INVISIBLE = frozenset(
    "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u180e"
    "\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\u2064\u206a\u206b\u206c\u206d\u206e\u206f"
    "\u3164\ufe00\ufe01\ufe02\ufe03\ufe04\ufe05\ufe06\ufe07\ufe08\ufe09\ufe0a\ufe0b\ufe0c\ufe0d\ufe0e\ufe0f"
    "\ufeff\uffa0"
)

_AT = r"(?:@|\s*[\[({<]\s*(?:at|et)\s*[\])}>]\s*)"
_DOT = r"(?:\.|\s*[\[({<]\s*(?:dot|pika|ta[čc]ka)\s*[\])}>]\s*)"
# Top-level domains that are not also common words: a bare ``name.tld`` is taken for a URL.
_TLDS = (
    "com|net|org|info|biz|edu|gov|int|eu|io|rs|xk|mk|ba|hr|bg|ro|gr|tr|hu|ch|fr|uk|nl|ly|gl|srb|shop|store|online|site"
)
# Domains that are also words (Albanian "me", Serbian "se", English "it", "at", "no", "us"...): only
# with a path (``t.me/abc``), after ``www.`` or with a scheme.
_WORD_TLDS = "me|it|at|no|be|de|se|si|al|co|tv|us|in|news|blog|app|dev"
_LABEL = r"(?<![\w.-])(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){1,8}"
_MAIL_PROVIDERS = "gmail|yahoo|hotmail|outlook|live|icloud|proton|protonmail|gmx|yandex"
# Every repetition is bounded and a match may only start where a word starts, so that a long
# pathological answer ("a.a.a.…", 5,000 digits) costs linear time, not quadratic.
_LOCAL = r"(?<![\w.+%-])[\w.+%-]{1,64}"
_DOMAIN = rf"[\w-]{{1,63}}(?:{_DOT}[\w-]{{1,63}}){{0,8}}"

_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("email", re.compile(rf"{_LOCAL}{_AT}{_DOMAIN}{_DOT}[a-z]{{2,24}}\b", re.I)),
    (
        "email",
        re.compile(
            rf"{_LOCAL}\s+at\s+[\w-]{{1,63}}(?:\s+dot\s+[\w-]{{1,63}}){{0,8}}\s+dot\s+(?:{_TLDS}|{_WORD_TLDS})\b", re.I
        ),
    ),
    ("email", re.compile(rf"{_LOCAL}{_AT}(?:{_MAIL_PROVIDERS})\b", re.I)),
    ("url", re.compile(r"\b(?:https?|ftp)://[^\s<>\"']{1,2000}|(?<![\w.-])www\.[^\s<>\"']{1,2000}", re.I)),
    ("url", re.compile(rf"{_LABEL}(?:{_TLDS})\b(?:/[^\s<>\"']{{0,2000}})?")),
    ("url", re.compile(rf"{_LABEL}(?:{_WORD_TLDS})/[^\s<>\"']{{0,2000}}")),
    ("iban", re.compile(r"(?<![a-z0-9])[a-z]{2}\d{2}(?:[ -]?[a-z0-9]){11,30}\b", re.I)),
    ("bank_account", re.compile(r"(?<![\d-])\d{3}-\d{6,13}-\d{2}(?![\d-])")),
    # Any run of digits and the separators people put between them; classified by _number_kind.
    ("number", re.compile(r"(?<![\w+])(?:\+|\b00)?\s?\(?\d(?:[\d \t./()\-]{5,28})\d(?!\w)")),
]

# Mobile numbers written without the leading 0: Kosovo 4x xxx xxx, Serbia 6x xxx xxx(x).
_LOCAL_WITHOUT_ZERO = re.compile(r"(?:4[3-9]|6\d)[ ./-]?\d{3}[ ./-]?\d{3,4}")
# Every kind of PII needs one of these; text without any is returned at once.
_MAYBE = re.compile(r"[\d@./]|\b(?:at|et)\b", re.I)
_DATE = re.compile(r"\d{1,2}[./-]\d{1,2}[./-](?:\d{4}|\d{2})")
_PRIORITY = {"email": 0, "url": 1, "iban": 2, "bank_account": 3, "phone": 4, "personal_number": 5}


@dataclass(frozen=True)
class PiiMatch:
    """A span of the original text and what it was taken for."""

    kind: str
    start: int
    end: int


def _skeleton(text: str) -> tuple[str, list[int] | None]:
    """The text without invisible characters and NFKC-folded, with each position's origin (None
    when the skeleton is the text itself, the common case)."""
    if text.isascii() or (unicodedata.is_normalized("NFKC", text) and _INVISIBLE.isdisjoint(text)):
        return text, None
    chars: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        if char in _INVISIBLE:
            continue
        folded = unicodedata.normalize("NFKC", char) if not char.isascii() else char
        for piece in folded:
            chars.append(piece)
            origin.append(index)
    return "".join(chars), origin


def _number_kind(candidate: str) -> str | None:
    digits = re.sub(r"\D", "", candidate)
    stripped = candidate.strip()
    international = stripped.startswith("+") or stripped.startswith("00")
    if international:
        return "phone" if 8 <= len(digits) <= 15 else None
    if _DATE.fullmatch(stripped.rstrip(".")):
        return None
    if digits.startswith("0") and 8 <= len(digits) <= 11:
        return "phone"
    if digits.startswith(("383", "381")) and 11 <= len(digits) <= 12:
        return "phone"  # an international number whose + was left out
    if _LOCAL_WITHOUT_ZERO.fullmatch(stripped) and not digits.endswith("000"):
        return "phone"  # 45 000 000 is an amount, not a phone
    if len(digits) in (10, 13) and re.fullmatch(r"[\d ]+", stripped):
        return "personal_number"
    return None


def _trim(kind: str, skeleton: str, start: int, end: int) -> tuple[int, int]:
    """Drop sentence punctuation and spaces that a pattern swallowed at the end of a match."""
    while end > start and (skeleton[end - 1].isspace() or (kind == "url" and skeleton[end - 1] in ".,;:!?)]}\"'")):
        end -= 1
    while start < end and skeleton[start].isspace():
        start += 1
    return start, end


def find_pii(text: str) -> list[PiiMatch]:
    """Every PII span in ``text`` (positions in the original string), without overlaps, in order."""
    skeleton, origin = _skeleton(text)
    if not _MAYBE.search(skeleton):
        return []
    found: list[tuple[int, int, str]] = []
    for kind, pattern in _PATTERNS:
        for match in pattern.finditer(skeleton):
            actual = kind
            if kind == "number":
                actual = _number_kind(match.group())
                if actual is None:
                    continue
            elif kind == "iban" and sum(c.isdigit() for c in match.group()[4:]) < 10:
                continue
            start, end = _trim(actual, skeleton, match.start(), match.end())
            if end > start:
                found.append((start, end, actual))
    # Longest match first at each position, then the more specific kind; keep non-overlapping ones.
    found.sort(key=lambda m: (m[0], -(m[1] - m[0]), _PRIORITY[m[2]]))
    chosen: list[PiiMatch] = []
    last_end = 0
    for start, end, kind in found:
        if start < last_end:
            continue
        if origin is None:
            chosen.append(PiiMatch(kind, start, end))
        else:
            chosen.append(PiiMatch(kind, origin[start], origin[end - 1] + 1))
        last_end = end
    return chosen


def scrub_text(text: str) -> str:
    """``text`` with every PII span replaced by its token, e.g. ``Call [phone] or write to [email]``."""
    matches = find_pii(text)
    if not matches:
        return text
    parts: list[str] = []
    position = 0
    for match in matches:
        parts.append(text[position : match.start])
        parts.append(TOKENS[match.kind])
        position = match.end
    parts.append(text[position:])
    return "".join(parts)
