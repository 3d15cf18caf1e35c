"""The export service: one call builds the dataset (staff or partner) and writes it in a format.

``export_responses`` is what the CLI (``flask survey export``) and an admin download call. It never
commits or changes anything; it reads inside the caller's session. It returns an
:class:`ExportSummary` whose ``rows_written`` and ``responses`` (the database count when the export
ran) let the caller prove completeness (promise R10).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from survey.db import read_only_transaction
from survey.exports.dataset import Dataset, ExportOptions, build_dataset
from survey.exports.errors import ExportOptionsInvalidError
from survey.exports.privacy import DEFAULT_K, KAnonymityReport, partner_dataset
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
) -> tuple[Dataset, KAnonymityReport | None]:
    """The dataset to export: the staff dataset, or the k-anonymous partner microdata."""
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
    **writer_options: Any,
) -> ExportSummary:
    """Export the responses of questionnaire ``code`` as ``format_name`` to ``out``.

    ``partner=True`` makes partner microdata (month precision, no free text, k-anonymity over the
    demographic questions, generalised or refused with :class:`~survey.exports.errors.ExportRefusedError`).
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
        dataset, report = prepare_dataset(code, options, partner, k, quasi_identifiers, generalise)
        responses = dataset.count()
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
