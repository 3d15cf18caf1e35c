"""Command line: ``flask --app wsgi survey <command>``."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

from survey.errors import DefinitionInvalidError
from survey.i18n import compile_catalogs, write_cyrillic_catalog
from survey.questionnaires.services import seed_shipped_questionnaires

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
