"""Command line: ``flask --app wsgi survey <command>``."""

from __future__ import annotations

import csv
from typing import TextIO

import click
from flask import Flask
from flask.cli import AppGroup

from survey.db import unit_of_work
from survey.errors import DefinitionInvalidError, QuestionnaireNotFoundError
from survey.i18n import compile_catalogs, write_cyrillic_catalog
from survey.questionnaires.services import get_questionnaire, seed_shipped_questionnaires
from survey.responses.codes import generate_codes

survey_cli = AppGroup("survey", help="Survey service administration.")


@survey_cli.command("seed")
def seed() -> None:
    """Load, publish and open the questionnaires shipped with the package (idempotent)."""
    try:
        report = seed_shipped_questionnaires()
    except DefinitionInvalidError as error:
        for line in (error.errors or {}).get("problems", []):
            click.echo(f"  {line}", err=True)
        raise click.ClickException(error.detail) from None
    for code, action in report:
        click.echo(f"{code}: {action}")


@survey_cli.command("codes")
@click.argument("code")
@click.option("--count", "-n", type=click.IntRange(1, 100_000), required=True, help="How many codes to make.")
@click.option("--output", "-o", type=click.File("w", encoding="utf-8"), default="-", help="CSV file (default stdout).")
@click.option("--require/--no-require", default=True, show_default=True, help="Make the questionnaire require a code.")
def make_codes(code: str, count: int, output: TextIO, require: bool) -> None:
    """Make one-time participation codes for a questionnaire (only their keyed hashes are stored)."""
    try:
        questionnaire = get_questionnaire(code)
    except QuestionnaireNotFoundError as error:
        raise click.ClickException(error.detail) from None
    with unit_of_work():
        made = generate_codes(questionnaire, count)
        questionnaire.requires_code = require or questionnaire.requires_code
    writer = csv.writer(output)
    writer.writerow(["participation_code"])
    writer.writerows([c] for c in made)
    click.echo(f"{len(made)} codes made for {code}; keep the file safe: the codes cannot be shown again.", err=True)


@survey_cli.command("compile-translations")
def compile_translations() -> None:
    """Compile the page-text catalogs (survey/translations/*/LC_MESSAGES/messages.po)."""
    for path in compile_catalogs():
        click.echo(f"compiled {path.parent.parent.name}")


@survey_cli.command("cyrillic-catalog")
def cyrillic_catalog() -> None:
    """Regenerate the Serbian Cyrillic page texts from the Serbian Latin ones."""
    click.echo(f"wrote {write_cyrillic_catalog()}")


def register(app: Flask) -> None:
    app.cli.add_command(survey_cli)
