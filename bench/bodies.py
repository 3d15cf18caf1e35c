"""Varied, valid submissions of the op-ed questionnaire (``dialogue_2022``), like ``tests.factories.dialogue_answers``.

Each answer set answers the required questions and a random selection of the others, following the
questionnaire's ``display_if`` rules, so that every body passes the full validation path and stores
about twelve answer rows (the same shape as the SQL-generated data of :mod:`bench.datagen`). Option
codes are read from the shipped definition, so the bodies follow its edits.
"""

# ruff: noqa: S311 - benchmark data, not cryptography

from __future__ import annotations

import json
import random
import uuid
from pathlib import Path
from typing import Any

from bench.common import ROOT

DEFINITION = ROOT / "survey" / "questionnaires" / "definitions" / "dialogue_2022.json"
LANGUAGES = ("sq", "sr-Latn", "sr-Cyrl", "en")
TEXTS = (
    "Më shumë transparencë.",
    "Више транспарентности, молим.",
    "Publish the agreements in full.",
    "Slobodno kretanje je najvažnije.",
)
# What marks the submission_id in a body template (the load generator puts a fresh UUID there).
SUBMISSION_ID_MARK = "00000000-0000-4000-8000-000000000000"


def load_definition(path: Path = DEFINITION) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _questions(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = {definition["consent"]["code"]: definition["consent"]}
    for section in definition["sections"]:
        for question in section["questions"]:
            found[question["code"]] = question
    return found


def _codes(question: dict[str, Any]) -> list[str]:
    if "options" in question:
        return [option["code"] for option in question["options"]]
    scale = question["scale"]
    return [point["code"] for point in scale["points"]] + [o["code"] for o in scale.get("non_substantive", [])]


def _skewed(rng: random.Random, codes: list[str]) -> str:
    """A plausible, uneven distribution: earlier options more often (power law over the positions)."""
    return codes[min(len(codes) - 1, int(rng.random() ** 1.6 * len(codes)))]


def random_answers(definition: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """One valid answer set: about 12 stored answer rows, as :func:`tests.factories.dialogue_answers`."""
    q = _questions(definition)
    answers: dict[str, Any] = {
        "consent_confirm": "yes",
        "awareness_dialogue": _skewed(rng, _codes(q["awareness_dialogue"])),
        "agreements_heard": _skewed(rng, _codes(q["agreements_heard"])),
        "dialogue_support": _skewed(rng, _codes(q["dialogue_support"])),
        "residence_area": _skewed(rng, _codes(q["residence_area"])),
    }
    if answers["agreements_heard"] == "yes":
        answers["agreements_known"] = rng.sample(_codes(q["agreements_known"])[:-1], rng.randint(1, 3))
    if rng.random() < 0.9:
        rating = q["transparency_rating"]["range"]
        answers["transparency_rating"] = rng.randint(rating["min"], rating["max"]) if rng.random() < 0.9 else "cant_say"
    if rng.random() < 0.7:
        answers["priorities_ranking"] = rng.sample(_codes(q["priorities_ranking"]), rng.randint(1, 3))
    if rng.random() < 0.8:
        answers["voice_heard"] = _skewed(rng, _codes(q["voice_heard"]))
    if rng.random() < 0.15:
        answers["message_to_leaders"] = rng.choice(TEXTS)
    for code, share in (("community", 0.9), ("age_band", 0.85), ("gender", 0.85)):
        if rng.random() < share:
            answers[code] = _skewed(rng, _codes(q[code]))
    return answers


def body_templates(count: int, seed: int = 7) -> list[str]:
    """``count`` JSON request bodies with varied answers; each has :data:`SUBMISSION_ID_MARK` to replace."""
    rng = random.Random(seed)
    definition = load_definition()
    return [
        json.dumps(
            {
                "submission_id": SUBMISSION_ID_MARK,
                "language": rng.choice(LANGUAGES),
                "answers": random_answers(definition, rng),
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )
        for _ in range(count)
    ]


def with_fresh_id(template: str) -> str:
    return template.replace(SUBMISSION_ID_MARK, str(uuid.uuid4()), 1)
