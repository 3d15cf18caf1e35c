"""Test data builders: a small questionnaire with every question type, and valid answers to it."""

from __future__ import annotations

import copy
import uuid
from typing import Any

LANGS = ["en", "sq", "sr-Latn", "sr-Cyrl"]


def t(text: str) -> dict[str, str]:
    """The same text in every language (enough for structure tests)."""
    return {lang: f"{text} [{lang}]" for lang in LANGS}


def opt(code: str, **extra: Any) -> dict[str, Any]:
    return {"code": code, "label": t(code), **extra}


AGREE_SCALE = {
    "code": "agree_3",
    "points": [opt("disagree", value=1), opt("neutral", value=2), opt("agree", value=3)],
    "non_substantive": [opt("dont_know", non_substantive=True)],
}


def all_types_definition(code: str = "all_types") -> dict[str, Any]:
    """A questionnaire with all eight types, display logic, exclusive and non-substantive options."""
    return copy.deepcopy(
        {
            "code": code,
            "default_language": "en",
            "languages": [{"code": lang, "name": lang} for lang in LANGS],
            "title": t("All types"),
            "consent": {
                "code": "consent",
                "type": "single_choice",
                "required": True,
                "text": t("Do you agree?"),
                "options": [opt("yes"), opt("no")],
                "terminate_if": {"question": "consent", "operator": "in", "values": ["no"]},
            },
            "sections": [
                {
                    "code": "main",
                    "title": t("Main"),
                    "questions": [
                        {
                            "code": "heard",
                            "type": "single_choice",
                            "required": True,
                            "text": t("Heard?"),
                            "options": [opt("yes"), opt("no"), opt("not_sure", non_substantive=True)],
                        },
                        {
                            "code": "which",
                            "type": "multiple_choice",
                            "text": t("Which?"),
                            "display_if": {"question": "heard", "operator": "in", "values": ["yes"]},
                            "min_choices": 1,
                            "max_choices": 2,
                            "options": [opt("a"), opt("b"), opt("c"), opt("none", exclusive=True, pin_last=True)],
                        },
                        {
                            "code": "support",
                            "type": "likert",
                            "required": True,
                            "text": t("Support?"),
                            "scale": AGREE_SCALE,
                        },
                        {
                            "code": "grid",
                            "type": "matrix",
                            "text": t("Grid"),
                            "rows": [{"code": "r1", "label": t("r1")}, {"code": "r2", "label": t("r2")}],
                            "scale": AGREE_SCALE,
                        },
                        {
                            "code": "score",
                            "type": "rating",
                            "text": t("Score"),
                            "range": {"min": 0, "max": 10, "step": 2},
                            "anchors": {"min": t("low"), "max": t("high")},
                            "non_substantive": [opt("cant_say", non_substantive=True)],
                        },
                        {
                            "code": "priorities",
                            "type": "ranking",
                            "text": t("Rank"),
                            "min_ranked": 2,
                            "max_ranked": 3,
                            "options": [opt("p1"), opt("p2"), opt("p3"), opt("p4")],
                        },
                        {
                            "code": "household",
                            "type": "number",
                            "text": t("How many?"),
                            "min": 1,
                            "max": 30,
                            "integer": True,
                        },
                        {
                            "code": "comment",
                            "type": "text",
                            "text": t("Comment"),
                            "max_length": 20,
                        },
                        {
                            "code": "story",
                            "type": "text",
                            "text": t("Story"),
                            "multiline": True,
                            "max_length": 200,
                            "display_if": {
                                "all": [
                                    {"question": "heard", "operator": "not_in", "values": ["no"]},
                                    {"question": "support", "operator": "in", "values": ["agree", "neutral"]},
                                ]
                            },
                        },
                    ],
                },
                {
                    "code": "about",
                    "title": t("About you"),
                    "questions": [
                        {
                            "code": "community",
                            "type": "single_choice",
                            "demographic": True,
                            "text": t("Community"),
                            "options": [opt("x"), opt("y"), opt("prefer_not_to_say", non_substantive=True)],
                        }
                    ],
                },
            ],
        }
    )


def valid_answers() -> dict[str, Any]:
    return {
        "consent": "yes",
        "heard": "yes",
        "which": ["b", "a"],
        "support": "agree",
        "grid": {"r1": "agree", "r2": "dont_know"},
        "score": 6,
        "priorities": ["p3", "p1"],
        "household": 4,
        "comment": "Prishtinë ✓",
        "story": "Line one\nЂорђе Љубичић 😀",
        "community": "x",
    }


def submission(answers: dict[str, Any] | None = None, language: str = "en", **extra: Any) -> dict[str, Any]:
    return {
        "submission_id": str(uuid.uuid4()),
        "language": language,
        "answers": valid_answers() if answers is None else answers,
        **extra,
    }


def dialogue_answers() -> dict[str, Any]:
    """A complete, valid answer set for the shipped op-ed questionnaire (required questions + a few)."""
    return {
        "consent_confirm": "yes",
        "awareness_dialogue": "a_little",
        "agreements_heard": "yes",
        "agreements_known": ["freedom_of_movement", "licence_plates"],
        "dialogue_support": "somewhat_support",
        "transparency_rating": 3,
        "priorities_ranking": ["economy_jobs", "freedom_of_movement"],
        "message_to_leaders": "Më shumë transparencë. Више транспарентности.",
        "residence_area": "kosovo",
        "community": "serb",
    }
