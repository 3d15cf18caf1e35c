"""Cross-community comparison, read off the published (already disclosure-controlled) results only.

For each agreement-type question (a likert, or each matrix row), each visible group's share in the
top two points ("agree") and bottom two ("disagree") is taken from the published percentages. The
divergence of a question is the spread of the agree shares between groups, in percentage points;
"common ground" lists the statements on which the majority of every visible group agrees (or every
group disagrees). Working from the published figures means the comparison can reveal nothing that
the tables themselves do not.
"""

from __future__ import annotations

from typing import Any

from survey.questionnaires.definition import iter_questions

TOP_CODED = {"<5%": 2.5, ">95%": 97.5}  # midpoints of the coded ranges: only ever used for the > 50 test


def _share(cells: list[dict[str, Any]], options: list[str]) -> float | None:
    total = 0.0
    for cell in cells:
        if cell["option"] in options:
            percent = cell.get("percent")
            if percent is None:
                return None  # a withheld share: this group is left out of the comparison
            total += TOP_CODED.get(percent, percent) if isinstance(percent, str) else percent
    return total


def _scale_ends(spec: dict[str, Any]) -> tuple[list[str], list[str]] | None:
    points = [p["code"] for p in spec.get("scale", {}).get("points", [])]
    if len(points) < 4:
        return None
    return points[:2], points[-2:]


def compare(definition: dict[str, Any], published: dict[str, Any]) -> list[dict[str, Any]]:
    """One entry per statement: code, row, per-group agree/disagree shares, divergence, common ground."""
    specs = {q["code"]: q for _s, q in iter_questions(definition)}
    found = []
    for question in published.get("questions", []):
        spec = specs.get(question["code"])
        if spec is None or spec["type"] not in ("likert", "matrix"):
            continue
        ends = _scale_ends(spec)
        if ends is None:
            continue
        low, high = ends
        rows = [r["code"] for r in spec.get("rows", [])] or [None]
        for row in rows:
            shares = {}
            for group in question["groups"]:
                if group["n"] is None:
                    continue
                cells = [c for c in group["cells"] if c.get("row") == row]
                agree, disagree = _share(cells, high), _share(cells, low)
                if agree is not None and disagree is not None:
                    shares[group["group"]] = {"agree": agree, "disagree": disagree}
            if len(shares) < 2:
                continue
            agrees = [s["agree"] for s in shares.values()]
            common = None
            if all(s["agree"] > 50 for s in shares.values()):
                common = "agree"
            elif all(s["disagree"] > 50 for s in shares.values()):
                common = "disagree"
            found.append(
                {
                    "code": question["code"],
                    "row": row,
                    "groups": shares,
                    "divergence": round(max(agrees) - min(agrees)),
                    "common_ground": common,
                }
            )
    return found
