"""``flask survey export CODE --format F --output PATH`` (DESIGN §5).

Register it on the ``survey`` command group in ``survey/cli.py`` with
``survey_cli.add_command(export_command)``. The file appears only when the export succeeded: it is
written beside the target under a temporary name and renamed at the end. ``--output -`` writes to
standard output instead (the summary then goes to standard error).

While a file is written, a progress line on standard error counts the rows written of the total:
redrawn in place at most four times a second on a terminal, a new line every ten seconds otherwise
(a log), and a last line at the end. ``--no-progress`` turns it off; it is never shown for ``-``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, BinaryIO

import click
from flask.cli import with_appcontext

from survey.errors import SurveyError
from survey.exports.dataset import ExportOptions
from survey.exports.services import ExportSummary, export_responses
from survey.exports.writers import FORMATS


@click.command("export")
@click.argument("code")
@click.option("--format", "format_name", type=click.Choice(list(FORMATS)), default="csv", show_default=True)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    required=True,
    help="File to write; - for standard output.",
)
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
@click.option("--progress/--no-progress", default=True, help="Show rows written on standard error (files only).")
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
    progress: bool,
) -> None:
    """Export the responses of questionnaire CODE."""
    options = ExportOptions(
        versions=versions or None,
        language=language,
        date_precision="month" if month else "day",
        free_text=free_text,
        order="shuffled" if shuffle else "id",
    )
    writer_options: dict[str, Any] = {}
    if bom:
        writer_options["bom"] = True
    if labels:
        writer_options["labels"] = True

    def run(out: BinaryIO, meter: ProgressLine | None = None) -> ExportSummary:
        return export_responses(
            code,
            format_name,
            out,
            options,
            partner=partner,
            k=k,
            generalise=not refuse,
            progress=meter,
            **writer_options,
        )

    if str(output) == "-":
        try:
            summary = run(sys.stdout.buffer)
        except SurveyError as error:
            raise _failure(error) from None
        _report(summary, "standard output", err=True)
        return
    meter = ProgressLine(sys.stderr) if progress else None
    handle, temporary = tempfile.mkstemp(dir=output.parent if str(output.parent) else ".", prefix=".export-")
    try:
        with os.fdopen(handle, "wb") as out:
            summary = run(out, meter)
        os.replace(temporary, output)
    except SurveyError as error:
        Path(temporary).unlink(missing_ok=True)
        raise _failure(error) from None
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    finally:
        if meter is not None:
            meter.close()
    _report(summary, str(output), err=False)


def _failure(error: SurveyError) -> click.ClickException:
    details = [f"  {key}: {value}" for key, value in (error.errors or {}).items()]
    return click.ClickException("\n".join([error.detail, *details]))


def _report(summary: ExportSummary, target: str, err: bool) -> None:
    counts = f"{summary.rows_written} of {summary.responses} responses, {summary.columns} columns"
    click.echo(f"{counts} -> {target}", err=err)
    report = summary.k_anonymity
    if report is None:
        return
    for step in report.steps:
        click.echo(f"  {step}", err=err)
    diversity = report.l_diversity
    if diversity is not None and diversity.cells_withheld:
        withheld = ", ".join(f"{item} ({rows})" for item, rows in diversity.rows_withheld.items())
        click.echo(
            f"  l-diversity (l = {diversity.l}): withheld {diversity.cells_withheld} item(s) in groups with fewer "
            f"than {diversity.l} different answers; answers withheld: {withheld}",
            err=err,
        )


class ProgressLine:
    """A progress callback that writes "Exporting: 1,500 of 20,000 rows (7%)" to ``stream``.

    On a terminal the line is redrawn in place at most every ``interval`` seconds; elsewhere a new
    line is written at most every ``log_interval`` seconds. The last figures are always shown.
    """

    def __init__(
        self,
        stream: IO[str],
        interval: float = 0.25,
        log_interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream
        self.clock = clock
        self.terminal = _isatty(stream)
        self.interval = interval if self.terminal else log_interval
        self.last_shown: float | None = None
        self.figures: tuple[int, int] | None = None
        self.shown: tuple[int, int] | None = None

    def __call__(self, done: int, total: int) -> None:
        self.figures = (done, total)
        now = self.clock()
        if self.last_shown is None or now - self.last_shown >= self.interval:
            self.last_shown = now
            self._show()

    def close(self) -> None:
        """Show the last figures (if not shown yet) and end the line."""
        if self.figures is not None and self.figures != self.shown:
            self._show()
        if self.shown is not None and self.terminal:
            self.stream.write("\n")
            self.stream.flush()

    def _show(self) -> None:
        assert self.figures is not None  # noqa: S101 - only called after __call__
        done, total = self.figures
        share = f" ({100 * done // total}%)" if total else ""
        text = f"Exporting: {done:,} of {total:,} rows{share}"
        self.stream.write(f"\r{text}\x1b[K" if self.terminal else f"{text}\n")
        self.stream.flush()
        self.shown = self.figures


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
