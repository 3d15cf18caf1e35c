"""``flask survey export CODE --format F --output PATH`` (DESIGN §5).

Register it on the ``survey`` command group in ``survey/cli.py`` with
``survey_cli.add_command(export_command)``. The file appears only when the export succeeded: it is
written beside the target under a temporary name and renamed at the end.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import click
from flask.cli import with_appcontext

from survey.errors import SurveyError
from survey.exports.dataset import ExportOptions
from survey.exports.services import export_responses
from survey.exports.writers import FORMATS


@click.command("export")
@click.argument("code")
@click.option("--format", "format_name", type=click.Choice(list(FORMATS)), default="csv", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="File to write.")
@click.option("--version", "versions", type=int, multiple=True, help="Version to include (repeatable; default all).")
@click.option("--language", help="Language of labels (default: the questionnaire's default language).")
@click.option("--month", is_flag=True, help="Give the month instead of the day.")
@click.option("--text", "free_text", type=click.Choice(["scrub", "raw", "drop"]), default="scrub", show_default=True)
@click.option("--bom", is_flag=True, help="CSV: start with a UTF-8 byte order mark (for Excel).")
@click.option("--labels", is_flag=True, help="CSV/XLSX: labels instead of codes.")
@click.option("--shuffle", is_flag=True, help="Shuffle the rows for this export (partner exports always are).")
@click.option("--partner", is_flag=True, help="Partner microdata: k-anonymous, month, no free text.")
@click.option("--k", type=int, default=5, show_default=True, help="Partner: the smallest group allowed.")
@click.option("--refuse", is_flag=True, help="Partner: refuse instead of generalising small groups.")
@with_appcontext
def export_command(
    code: str,
    format_name: str,
    output: Path,
    versions: tuple[int, ...],
    language: str | None,
    month: bool,
    free_text: str,
    bom: bool,
    labels: bool,
    shuffle: bool,
    partner: bool,
    k: int,
    refuse: bool,
) -> None:
    """Export the responses of questionnaire CODE."""
    options = ExportOptions(
        versions=versions or None,
        language=language,
        date_precision="month" if month else "day",
        free_text=free_text,
        order="shuffled" if shuffle else "id",
    )
    writer_options = {}
    if bom:
        writer_options["bom"] = True
    if labels:
        writer_options["labels"] = True
    handle, temporary = tempfile.mkstemp(dir=output.parent if str(output.parent) else ".", prefix=".export-")
    try:
        with os.fdopen(handle, "wb") as out:
            summary = export_responses(
                code, format_name, out, options, partner=partner, k=k, generalise=not refuse, **writer_options
            )
        os.replace(temporary, output)
    except SurveyError as error:
        Path(temporary).unlink(missing_ok=True)
        details = [f"  {key}: {value}" for key, value in (error.errors or {}).items()]
        raise click.ClickException("\n".join([error.detail, *details])) from None
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    click.echo(f"{summary.rows_written} of {summary.responses} responses, {summary.columns} columns -> {output}")
    if summary.k_anonymity is not None:
        for step in summary.k_anonymity.steps:
            click.echo(f"  {step}")
