"""The export service: one call builds the dataset (staff or partner) and writes it in a format.

``export_responses`` is what the CLI (``flask survey export``) and an admin download call. It never
commits or changes anything; it reads inside the caller's session. It returns an
:class:`ExportSummary` whose ``rows_written`` and ``responses`` (the database count when the export
ran) let the caller prove completeness (promise R10).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, BinaryIO

from survey.db import read_only_transaction
from survey.errors import ExportOptionsInvalidError
from survey.exports.dataset import Dataset, ExportOptions, build_dataset
from survey.exports.privacy import DEFAULT_K, DEFAULT_L, KAnonymityReport, partner_dataset
from survey.exports.writers import get_format

# Options each writer takes beyond the dataset and the file.
WRITER_OPTIONS: dict[str, set[str]] = {
    "csv": {"bom", "neutralise", "labels"},
    "jsonl": set(),
    "xlsx": {"neutralise", "labels"},
    "sav": set(),
    "dta": set(),
    "datapackage": {"neutralise", "licenses"},
}

# How many rows pass between two calls of an export's progress callback.
PROGRESS_EVERY = 500

Progress = Callable[[int, int], None]
"""Called with (rows handed to the writer so far, responses in all)."""


@dataclass(frozen=True)
class ExportSummary:
    questionnaire: str
    format: str
    rows_written: int
    responses: int
    columns: int
    privacy: dict[str, Any] = field(default_factory=dict)
    k_anonymity: KAnonymityReport | None = None


def prepare_dataset(
    code: str,
    options: ExportOptions | None = None,
    partner: bool = False,
    k: int = DEFAULT_K,
    quasi_identifiers: Sequence[str] | None = None,
    generalise: bool = True,
    l: int = DEFAULT_L,  # noqa: E741
) -> tuple[Dataset, KAnonymityReport | None]:
    """The dataset to export: the staff dataset, or the k-anonymous, l-diverse partner microdata."""
    options = options or ExportOptions()
    if not partner:
        return build_dataset(code, options), None
    return partner_dataset(
        code,
        k=k,
        quasi_identifiers=quasi_identifiers,
        generalise=generalise,
        versions=options.versions,
        language=options.language,
        pivot=options.pivot,
        l=l,
    )


def export_responses(
    code: str,
    format_name: str,
    out: BinaryIO,
    options: ExportOptions | None = None,
    partner: bool = False,
    k: int = DEFAULT_K,
    quasi_identifiers: Sequence[str] | None = None,
    generalise: bool = True,
    l: int = DEFAULT_L,  # noqa: E741
    progress: Progress | None = None,
    **writer_options: Any,
) -> ExportSummary:
    """Export the responses of questionnaire ``code`` as ``format_name`` to ``out``.

    ``partner=True`` makes partner microdata (month precision, no free text, k-anonymity over the
    demographic questions, generalised or refused with :class:`~survey.errors.ExportRefusedError`,
    and distinct l-diversity on the opinion items, by withholding). ``progress`` is called every
    :data:`PROGRESS_EVERY` rows and after the last one with the rows handed to the writer and the total.
    ``writer_options`` go to the writer (``bom``, ``labels``, ``neutralise``, ``licenses``).
    """
    fmt = get_format(format_name)
    unknown = set(writer_options) - WRITER_OPTIONS[fmt.name]
    if unknown:
        raise ExportOptionsInvalidError(
            "Those options do not apply to this format.",
            {name: [f"Not an option of the {fmt.name} format."] for name in sorted(unknown)},
        )
    with read_only_transaction():
        dataset, report = prepare_dataset(code, options, partner, k, quasi_identifiers, generalise, l)
        responses = dataset.count()
        if progress is not None:
            dataset = _reporting(dataset, progress, responses)
        rows = fmt.write(dataset, out, **writer_options)
    return ExportSummary(
        questionnaire=dataset.questionnaire,
        format=fmt.name,
        rows_written=rows,
        responses=responses,
        columns=len(dataset.columns),
        privacy=dict(dataset.privacy),
        k_anonymity=report,
    )


def _reporting(dataset: Dataset, progress: Progress, total: int) -> Dataset:
    """``dataset`` whose rows call ``progress`` as the writer takes them."""
    source = dataset.rows

    def rows() -> Iterator[tuple[Any, ...]]:
        done = 0
        progress(0, total)
        for row in source():
            yield row
            done += 1
            if done % PROGRESS_EVERY == 0:
                progress(done, total)
        progress(done, total)

    return replace(dataset, _rows=rows)
