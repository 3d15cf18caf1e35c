"""Extension objects, created unbound and initialised by the application factory."""

from __future__ import annotations

from flask_migrate import Migrate
from flask_wtf.csrf import CSRFProtect

from survey.api import SurveyApi
from survey.db import db

# render_as_batch: SQLite can only alter tables by recreating them (Alembic batch mode).
migrate = Migrate(render_as_batch=True, compare_type=True)
api = SurveyApi()
csrf = CSRFProtect()

__all__ = ["api", "csrf", "db", "migrate"]
