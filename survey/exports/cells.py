"""Spreadsheet safety of text cells (promise S11, ASVS 1.2.10) and XML-safe strings for XLSX.

A spreadsheet treats a cell that begins with ``=``, ``+``, ``-`` or ``@`` as a formula, and tab,
carriage return, line feed or NUL at the start can smuggle one past a trimming importer. Every
**text** cell whose first character that is not white space or invisible is one of those (or a
fullwidth or small-form variant of one, which some spreadsheets fold to ASCII), or which starts with
tab, CR, LF or NUL, gets a leading apostrophe. Numbers are never touched: ``-5`` in a numeric column
stays the number -5, while the text ``-5`` becomes ``'-5``. The apostrophe is the one documented
difference between an export and the stored value.
"""

from __future__ import annotations

import re
import unicodedata

# The ASCII triggers, their fullwidth forms, the small-form variants and the Unicode minus sign.
FORMULA_TRIGGERS = frozenset("=+-@\t\r\n\0" + "\uff1d\uff0b\uff0d\uff20" + "\ufe62\ufe63\ufe66\ufe6b\u2212")
PREFIX = "'"

# Characters XML 1.0 cannot carry at all (an XLSX file holding one does not open).
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def is_formula_like(text: str) -> bool:
    """True when a spreadsheet could take ``text`` for a formula (see the module docstring)."""
    for char in text:
        if char in FORMULA_TRIGGERS:
            return True
        if char.isspace() or unicodedata.category(char) == "Cf":
            continue
        return False
    return False


def neutralise(text: str) -> str:
    """``text`` with a leading apostrophe if it could be taken for a formula, else unchanged."""
    return PREFIX + text if is_formula_like(text) else text


def xml_safe(text: str) -> str:
    """``text`` with characters that XML cannot hold replaced by U+FFFD.

    Stored answers never contain them (submission refuses control characters); this is a guard
    for labels or data that reached the database some other way.
    """
    return _XML_ILLEGAL.sub("\ufffd", text)
