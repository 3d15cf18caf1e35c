"""Stored result snapshots: public results are served from these, never computed per request."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Date, DateTime, ForeignKey, Integer
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from survey.db import Base


class ResultSnapshot(Base):
    """The disclosure-controlled public results of one moment, for every allowed breakdown.

    ``responses`` (the exact count when it was taken) and ``taken_at`` drive the snapshot rule and
    are never published; the public output carries only the day and the rounded total.
    """

    __tablename__ = "result_snapshots"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    questionnaire_id: Mapped[int] = mapped_column(ForeignKey("questionnaires.id", ondelete="CASCADE"), index=True)
    taken_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    taken_on: Mapped[dt.date] = mapped_column(Date)
    responses: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer)
    results: Mapped[dict[str, Any]] = mapped_column(JSON().with_variant(JSONB(), "postgresql"))
