"""Strict JSON decoding for every request body (promise S9).

Python's ``json`` accepts things a validating service must not: duplicate keys (the last one
silently wins), ``NaN``/``Infinity`` and ``1e999`` (which becomes ``inf``), and arbitrarily deep
nesting (a ``RecursionError`` deep enough). Here each of those is a 400 with a clear reason.
Lone surrogates pass JSON decoding and are refused later by the answer validation.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import BadRequest


class StrictJSONError(BadRequest):
    """The body is not acceptable JSON; the description says why."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise StrictJSONError(f"Duplicate key {key!r} in JSON body.")
        result[key] = value
    return result


def _no_constants(name: str) -> Any:
    raise StrictJSONError(f"{name} is not a valid JSON number.")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise StrictJSONError("Number out of range in JSON body.")
    return value


def _bounded_int(text: str) -> int:
    # Anything longer cannot be a valid answer, and very long digit strings cost quadratic time.
    if len(text.lstrip("-")) > 19:
        raise StrictJSONError("Integer out of range in JSON body.")
    return int(text)


# A JSON string (also an unterminated one, to the end), and the brackets left once strings are gone.
_STRING = re.compile(r'"(?:[^"\\]++|\\.)*+(?:"|\Z)', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")


def _depth_before_parsing(text: str, limit: int) -> None:
    """Reject nesting deeper than ``limit`` in linear time, before the recursive parser runs."""
    if text.count("[") + text.count("{") <= limit:
        return  # no deeper than its opening brackets: a typical submission has a handful (issue 7)
    depth = 0
    for bracket in _BRACKETS.findall(_STRING.sub("", text)):
        if bracket in "[{":
            depth += 1
            if depth > limit:
                raise StrictJSONError(f"JSON nested deeper than {limit} levels.")
        else:
            depth -= 1


# One decoder for every body: ``json.loads`` with hooks would build one per call (issue 7).
_DECODER = json.JSONDecoder(
    object_pairs_hook=_no_duplicates,
    parse_constant=_no_constants,
    parse_float=_finite_float,
    parse_int=_bounded_int,
)


def loads_strict(data: str | bytes, max_depth: int = 20) -> Any:
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise StrictJSONError("The body is not valid UTF-8.") from error
    if data.startswith("\ufeff"):
        raise StrictJSONError("The body starts with a byte order mark (BOM); JSON is sent without one.")
    _depth_before_parsing(data, max_depth)
    try:
        return _DECODER.decode(data)
    except json.JSONDecodeError as error:
        raise StrictJSONError(f"Invalid JSON: {error.msg} at position {error.pos}.") from error


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class StrictJSONProvider(DefaultJSONProvider):
    """Flask's JSON provider with strict decoding; encoding is UTF-8 without ASCII escapes, except that a
    document holding a lone surrogate (only ever input quoted back in an error message) is written with
    escapes: such a string has no UTF-8 form, and the response could not be sent at all."""

    ensure_ascii = False
    sort_keys = False

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return loads_strict(s, self._app.config.get("JSON_MAX_DEPTH", 20))

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        text = super().dumps(obj, **kwargs)
        if _LONE_SURROGATE.search(text):
            text = super().dumps(obj, **{**kwargs, "ensure_ascii": True})
        return text
