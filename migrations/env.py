"""Alembic environment: runs migrations on the app's engine (``flask db upgrade``)."""

import logging
from logging.config import fileConfig

from alembic import context
from flask import current_app

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)
log = logging.getLogger("alembic.env")

database = current_app.extensions["migrate"].db
target_metadata = database.metadata


def skip_empty_autogenerate(_context, _revision, directives):
    """``flask db migrate`` writes no file when the models and migrations already agree."""
    if getattr(config.cmd_opts, "autogenerate", False) and directives[0].upgrade_ops.is_empty():
        directives[:] = []
        log.info("No changes in schema detected.")


def run_offline():
    url = database.engine.url.render_as_string(hide_password=False)
    context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online():
    options = dict(current_app.extensions["migrate"].configure_args)
    options.setdefault("process_revision_directives", skip_empty_autogenerate)
    with database.engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, **options)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
