"""Answer profiles: each response's answers to the breakdown questions, as one 64-bit id.

A response's profile is the canonical JSON of ``{breakdown question code: chosen option code}``
over the demographic questions of the version it answered (unanswered ones left out, so adding a
breakdown question in a later version changes no earlier response's profile). Its id is the first
8 bytes of the SHA-256 of that JSON, as a signed integer: the submission path derives it without a
look-up, and the migration that introduced profiles derives the same ids (it repeats these lines,
as migrations must not import the application). Two different profiles of one questionnaire would
share an id with a probability around 2⁻⁴⁴ at a million profiles; no real questionnaire has more
than a few thousand.

A question that was asked without the demographic flag cannot become a breakdown in a later
version (``questionnaires.services.publish_version`` refuses it): the profiles of the responses
already stored would not hold its answers.
"""

from __future__ import annotations

import hashlib
from typing import Any

from survey.questionnaires.definition import canonical_json


def profile_of(breakdown_codes: tuple[str, ...], answers: dict[str, Any]) -> tuple[int, str]:
    """The profile id and canonical JSON (as stored) of validated ``answers`` (code -> value) for these
    breakdown questions."""
    breakdowns = canonical_json({code: answers[code] for code in breakdown_codes if isinstance(answers.get(code), str)})
    return _id_of(breakdowns), breakdowns


def profile_id(breakdowns: dict[str, str]) -> int:
    return _id_of(canonical_json(breakdowns))


def _id_of(canonical: str) -> int:
    digest = hashlib.sha256(canonical.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)
