"""Responses and their answers.

Privacy by construction: a response has a random UUID, the day it arrived, the language and channel,
and two hashes (of the client's ``submission_id`` and of the canonical payload) that make resubmission
idempotent. There is deliberately no column that could hold an IP address, a user agent, a cookie, a
session or account id, or a time of day.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from survey.db import Base

CHANNELS = ("web", "api", "import")


class Response(Base):
    __tablename__ = "responses"
    __table_args__ = (
        UniqueConstraint("questionnaire_id", "submission_key"),
        CheckConstraint(f"channel IN {CHANNELS}", name="channel"),
        Index("ix_responses_questionnaire_day", "questionnaire_id", "submitted_on"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    questionnaire_id: Mapped[int] = mapped_column(ForeignKey("questionnaires.id", ondelete="CASCADE"))
    version_id: Mapped[int] = mapped_column(ForeignKey("questionnaire_versions.id"), index=True)
    language: Mapped[str] = mapped_column(String(35))
    channel: Mapped[str] = mapped_column(String(8))
    submitted_on: Mapped[dt.date] = mapped_column(Date)
    # SHA-256 of the client's submission_id and of the canonical payload (hex).
    submission_key: Mapped[str] = mapped_column(String(64))
    payload_hash: Mapped[str] = mapped_column(String(64))


class AnswerProfile(Base):
    """A combination of breakdown answers that some response gave, e.g. ``{"community": "serb"}``.

    Every answer row carries its response's profile id, so one GROUP BY over the answers counts
    every breakdown at once (DESIGN §4; issue 7). The id is a 64-bit hash of the canonical JSON of
    ``breakdowns`` (see :func:`survey.responses.profiles.profile_of`): the submission path knows it
    without a look-up. Only the answered breakdown questions are in ``breakdowns``.
    """

    __tablename__ = "answer_profiles"

    questionnaire_id: Mapped[int] = mapped_column(ForeignKey("questionnaires.id", ondelete="CASCADE"), primary_key=True)
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    breakdowns: Mapped[dict[str, str]] = mapped_column(JSON)


class Answer(Base):
    """One stored value: a chosen option, a matrix row's point, a rank, a number or a text.

    The primary key (response, question, seq) is also the export order. The index
    ``ix_answers_counts`` holds every column the results count, in GROUP BY order, so that counting
    reads the index alone (SQLite 50× faster at 100k responses; research/perf-ceilings.md).
    """

    __tablename__ = "answers"
    __table_args__ = (
        Index("ix_answers_counts", "question_id", "option_id", "item_id", "rank", "number", "profile_id", "seq"),
    )

    response_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("responses.id", ondelete="CASCADE"), primary_key=True)
    question_id: Mapped[int] = mapped_column(ForeignKey("questions.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    item_id: Mapped[int | None] = mapped_column(ForeignKey("question_items.id"))
    option_id: Mapped[int | None] = mapped_column(ForeignKey("options.id"))
    number: Mapped[float | None] = mapped_column(Float)
    text: Mapped[str | None] = mapped_column(Text)
    rank: Mapped[int | None] = mapped_column(SmallInteger)
    profile_id: Mapped[int] = mapped_column(BigInteger)  # the response's AnswerProfile (same questionnaire)
