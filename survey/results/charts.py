"""Bar charts as plain SVG geometry, computed here and drawn by a template (no script, no library).

Bars show published percentages; a share shown as "<5%" or ">95%" is drawn at the middle of its
range and labelled as published; a withheld share draws no bar and says so in its label.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

WIDTH, LABEL_WIDTH, BAR_HEIGHT, GAP = 640, 250, 22, 8
LABEL_CHARACTERS = 34


@dataclass(frozen=True)
class Bar:
    label: str
    short_label: str
    value_label: str
    y: int
    width: float


@dataclass(frozen=True)
class Chart:
    title: str
    description: str
    bars: list[Bar]
    width: int
    height: int
    label_width: int


def _length(percent: Any) -> float:
    if isinstance(percent, int | float):
        return float(percent)
    return {"<5%": 2.5, ">95%": 97.5}.get(percent, 0.0)


def _value_label(cell: dict[str, Any], withheld: str) -> str:
    percent, count = cell.get("percent"), cell.get("count")
    if isinstance(percent, int):
        return f"{percent}%"
    if isinstance(percent, str):
        return percent
    if count is None:
        return withheld
    return str(count)


def bar_chart(title: str, cells: list[dict[str, Any]], labels: dict[str, str], withheld: str) -> Chart:
    """A horizontal bar per cell; ``labels`` maps option codes to the reader's language."""
    plot = WIDTH - LABEL_WIDTH - 60
    bars = []
    for index, cell in enumerate(cells):
        label = labels.get(cell["option"], cell["option"])
        short = label if len(label) <= LABEL_CHARACTERS else label[: LABEL_CHARACTERS - 1] + "…"
        bars.append(
            Bar(
                label=label,
                short_label=short,
                value_label=_value_label(cell, withheld),
                y=index * (BAR_HEIGHT + GAP),
                width=round(plot * _length(cell.get("percent")) / 100, 1),
            )
        )
    description = "; ".join(f"{bar.label}: {bar.value_label}" for bar in bars)
    height = max(1, len(bars)) * (BAR_HEIGHT + GAP)
    return Chart(title, description, bars, WIDTH, height, LABEL_WIDTH)
