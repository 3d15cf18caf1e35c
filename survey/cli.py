"""Command line: ``flask --app wsgi survey <command>``."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

from survey.errors import DefinitionInvalidError
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


def register(app: Flask) -> None:
    app.cli.add_command(survey_cli)
