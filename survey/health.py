"""Liveness and database reachability for load balancers and operators."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from survey.db import db

log = logging.getLogger(__name__)

bp = Blueprint("health", __name__)


@bp.get("/health")
def health() -> tuple[Response, int]:
    try:
        db.session.execute(text("SELECT 1"))
        database = "ok"
    except SQLAlchemyError as error:
        log.warning("health check: database unreachable (%s)", type(error).__name__)
        database = "unreachable"
    finally:
        db.session.rollback()
    healthy = database == "ok"
    status = 200 if healthy else 503
    return jsonify(status="ok" if healthy else "degraded", database=database), status
