"""Command line: ``flask --app wsgi survey <command>``."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import TextIO

import click
from flask import Flask
from flask.cli import AppGroup

from survey.accounts.auth import user_by_email
from survey.accounts.models import ROLES
from survey.accounts.services import TOKEN_DAYS_DEFAULT, TOKEN_DAYS_MAX, create_token, create_user
from survey.db import backup_sqlite, db
from survey.errors import DefinitionInvalidError, QuestionnaireNotFoundError, UserExistsError, UserInvalidError
from survey.exports.cli import export_command
from survey.i18n import compile_catalogs, write_cyrillic_catalog
from survey.questionnaires.services import get_questionnaire, seed_shipped_questionnaires
from survey.responses.codes import codes_csv, issue_codes
from survey.results.services import refresh_snapshot

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
    made = issue_codes(questionnaire, count, require=require)
    output.write(codes_csv(made))
    click.echo(f"{len(made)} codes made for {code}; keep the file safe: the codes cannot be shown again.", err=True)


@survey_cli.command("create-user")
@click.argument("email")
@click.option("--name", required=True, help="The person's name, as shown in the audit log.")
@click.option("--role", type=click.Choice(ROLES), default="admin", show_default=True)
@click.password_option(
    help="At least 12 characters; asked for when not given (or read from SURVEY_PASSWORD).", envvar="SURVEY_PASSWORD"
)
def create_user_command(email: str, name: str, role: str, password: str) -> None:
    """Create a staff user (the first admin is made this way)."""
    try:
        user = create_user(email, name, role, password)
    except (UserInvalidError, UserExistsError) as error:
        for field, messages in (error.errors or {}).items():
            click.echo(f"  {field}: {' '.join(messages)}", err=True)
        raise click.ClickException(error.detail) from None
    click.echo(f"created {user.role} {user.email}")


@survey_cli.command("create-token")
@click.argument("email")
@click.option("--name", default="cli", show_default=True, help="What the token is for.")
@click.option("--days", type=click.IntRange(1, TOKEN_DAYS_MAX), default=TOKEN_DAYS_DEFAULT, show_default=True)
def create_token_command(email: str, name: str, days: int) -> None:
    """Make an API token for a staff user; it is printed once and only its hash is kept."""
    user = user_by_email(email)
    if user is None:
        raise click.ClickException(f"There is no user {email}.")
    _token, secret = create_token(user, name, days)
    click.echo(secret)


@survey_cli.command("snapshot")
@click.argument("code")
@click.option("--due", is_flag=True, help="Only if the snapshot rule allows one now (for a timer).")
def snapshot_command(code: str, due: bool) -> None:
    """Take a new public results snapshot now (if any response arrived since the last one); with
    --due, only when the snapshot rule allows it (run it hourly from a timer for large surveys)."""
    try:
        questionnaire = get_questionnaire(code)
    except QuestionnaireNotFoundError as error:
        raise click.ClickException(error.detail) from None
    snapshot = refresh_snapshot(questionnaire, force=not due, in_request=False)
    if snapshot is None:
        click.echo(f"{code}: no responses yet, nothing to publish")
    else:
        click.echo(f"{code}: snapshot of {snapshot.taken_on} ({snapshot.responses} responses)")


@survey_cli.command("backup")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def backup_command(path: Path) -> None:
    """Copy the embedded SQLite database into the new file PATH, complete and consistent, while the
    service runs (PostgreSQL: pg_dump, see docs/deployment.md)."""
    try:
        responses = backup_sqlite(db.engine, path)
    except ValueError:  # not a SQLite file
        raise click.ClickException(
            "This command copies a SQLite database file. Back up PostgreSQL with pg_dump -Fc "
            "(docs/deployment.md, section 6)."
        ) from None
    except FileExistsError:
        raise click.ClickException(f"{path} exists; a backup never replaces a file: name a new one.") from None
    except (OSError, sqlite3.Error) as error:
        raise click.ClickException(f"The backup failed; no file was left at {path}: {error}") from None
    click.echo(f"backed up {responses} response{'' if responses == 1 else 's'} to {path}")


@survey_cli.command("compile-translations")
def compile_translations() -> None:
    """Compile the page-text catalogs (survey/translations/*/LC_MESSAGES/messages.po)."""
    for path in compile_catalogs():
        click.echo(f"compiled {path.parent.parent.name}")


@survey_cli.command("cyrillic-catalog")
def cyrillic_catalog() -> None:
    """Regenerate the Serbian Cyrillic page texts from the Serbian Latin ones."""
    click.echo(f"wrote {write_cyrillic_catalog()}")


survey_cli.add_command(export_command)


def register(app: Flask) -> None:
    app.cli.add_command(survey_cli)
