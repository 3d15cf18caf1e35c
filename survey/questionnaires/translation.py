"""Translation tools for editors: what is missing in which language, and Serbian Cyrillic from Latin."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from survey.i18n import latin_to_cyrillic

# Members that are authoring metadata, never shown to respondents (English only by convention).
METADATA = {"themes", "sources", "source_document", "estimated_duration_minutes", "op_ed_excerpt", "informed_by"}


def _texts(value: Any, languages: set[str], path: str = "") -> Iterator[tuple[str, dict[str, str]]]:
    """Every respondent-facing text map (its keys are language tags) with its path."""
    if isinstance(value, dict):
        if value and set(value) <= languages and all(isinstance(v, str) for v in value.values()):
            yield path, value
            return
        for key, item in value.items():
            if key not in METADATA and key != "languages":
                yield from _texts(item, languages, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _texts(item, languages, f"{path}[{index}]")


def completeness(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per declared language: how many texts it has, of how many, and the paths of the missing ones."""
    languages = {lang["code"] for lang in definition.get("languages", [])}
    texts = list(_texts(definition, languages))
    report = {}
    for language in sorted(languages):
        missing = [path for path, text in texts if not (text.get(language) or "").strip()]
        report[language] = {"total": len(texts), "translated": len(texts) - len(missing), "missing": missing}
    return report


def fill_cyrillic(definition: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """A copy with every empty ``sr-Cyrl`` text made from its ``sr-Latn`` one; and how many were filled.

    Existing Cyrillic is never overwritten: an editor's corrections stay.
    """
    result = copy.deepcopy(definition)
    languages = {lang["code"] for lang in result.get("languages", [])}
    filled = 0
    if not {"sr-Latn", "sr-Cyrl"} <= languages:
        return result, 0
    for _path, text in _texts(result, languages):
        if text.get("sr-Latn") and not (text.get("sr-Cyrl") or "").strip():
            text["sr-Cyrl"] = latin_to_cyrillic(text["sr-Latn"])
            filled += 1
    return result, filled
