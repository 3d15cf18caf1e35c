"""The public results page: every question with a chart and its data table, in four languages."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request

from survey.i18n import LANGUAGE_NAMES, gettext, translated, use_language
from survey.questionnaires.definition import iter_questions
from survey.questionnaires.services import current_version, get_questionnaire
from survey.results.charts import bar_chart
from survey.results.comparison import compare
from survey.results.services import breakdowns, public_results

bp = Blueprint("results_pages", __name__)


@bp.get("/results/<string(maxlength=63):code>")
def results_page(code: str) -> str:
    questionnaire = get_questionnaire(code)
    version = current_version(questionnaire)
    definition = version.definition if version else {"languages": [], "default_language": "en"}
    languages = [lang["code"] for lang in definition["languages"]]
    language = use_language(languages or ["en"], request.args.get("lang"), questionnaire.default_language)
    breakdown = request.args.get("breakdown") or None
    results = public_results(code, breakdown)  # raises for private results and unknown breakdowns
    specs = {q["code"]: q for _s, q in iter_questions(definition)}
    default = definition["default_language"]

    def tr(texts: dict[str, str] | None) -> str:
        return translated(texts, language, default)

    group_labels = {ALL_LABEL: gettext("Everyone"), "other": gettext("Other groups")}
    if breakdown:
        group_labels |= {o["code"]: tr(o["label"]) for o in specs[breakdown]["options"]}
    questions = [
        _question_view(q, specs[q["code"]], tr, group_labels) for q in results["questions"] if q["code"] in specs
    ]
    return render_template(
        "results/page.html",
        questionnaire=questionnaire,
        definition=definition,
        results=results,
        questions=questions,
        comparison=_comparison_view(compare(definition, results), specs, tr, group_labels) if breakdown else [],
        breakdown=breakdown,
        breakdowns=[(c, tr(specs[c]["text"])) for c in breakdowns(definition)],
        lang=language,
        languages=[(tag, LANGUAGE_NAMES.get(tag, tag)) for tag in languages],
    )


ALL_LABEL = "all"


def _labels(spec: dict[str, Any], tr: Any) -> dict[str, str]:
    """Option, scale-point and row codes of a question in the reader's language."""
    labels: dict[str, str] = {}
    for option in spec.get("options", []) + spec.get("non_substantive", []):
        labels[option["code"]] = tr(option["label"])
    scale = spec.get("scale") or {}
    for point in scale.get("points", []) + scale.get("non_substantive", []):
        labels[point["code"]] = tr(point["label"])
    return labels


def _question_view(published: dict[str, Any], spec: dict[str, Any], tr: Any, groups: dict[str, str]) -> dict[str, Any]:
    labels = _labels(spec, tr)
    rows = [(r["code"], tr(r["label"])) for r in spec.get("rows", [])] or [(None, None)]
    if spec["type"] == "ranking":
        rows = [(rank, gettext("Place %(n)d", n=rank)) for rank in range(1, (spec.get("max_ranked") or 1) + 1)]
    parts = []
    for row, row_label in rows:
        charts = []
        for group in published["groups"]:
            key = "rank" if spec["type"] == "ranking" else "row"
            cells = [c for c in group.get("cells", []) if c.get(key) == row]
            title = groups.get(group["group"], group["group"])
            charts.append(
                {
                    "group": title,
                    "n": group["n"],
                    "cells": cells,
                    "chart": bar_chart(title, cells, labels, gettext("withheld")) if group["n"] is not None else None,
                }
            )
        parts.append({"label": row_label, "charts": charts})
    return {"code": spec["code"], "type": spec["type"], "text": tr(spec["text"]), "parts": parts, "labels": labels}


def _comparison_view(entries: list[dict[str, Any]], specs: dict[str, Any], tr: Any, groups: dict[str, str]) -> list:
    view = []
    for entry in entries:
        spec = specs[entry["code"]]
        text = tr(spec["text"])
        if entry["row"]:
            text = tr(next(r["label"] for r in spec["rows"] if r["code"] == entry["row"]))
        view.append({**entry, "text": text, "group_labels": {g: groups.get(g, g) for g in entry["groups"]}})
    return sorted(view, key=lambda e: -e["divergence"])
