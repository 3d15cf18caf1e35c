"""Questionnaires, their immutable published versions, and the normalised questions, options and
items (matrix rows) that SQL aggregation and answer storage refer to."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Integer,
    SmallInteger,
    String,
    UniqueConstraint,
    event,
    inspect,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from survey.db import Base
from survey.errors import IllegalTransitionError

JSONDocument = JSON().with_variant(JSONB(), "postgresql")

STATUSES = ("draft", "open", "closed", "archived")

# Allowed moves of the lifecycle (DESIGN §3): status -> statuses it may go to.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "draft": ("open",),
    "open": ("closed",),
    "closed": ("open", "archived"),
    "archived": (),
}


def effective_status(status: str, opens_on: dt.date | None, closes_on: dt.date | None, today: dt.date) -> str:
    """The status respondents see: an open questionnaire outside its dates is not open."""
    if status == "open":
        if opens_on and today < opens_on:
            return "draft"
        if closes_on and today > closes_on:
            return "closed"
    return status


class Questionnaire(Base):
    __tablename__ = "questionnaires"
    __table_args__ = (CheckConstraint(f"status IN {STATUSES}", name="status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(63), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="draft")
    default_language: Mapped[str] = mapped_column(String(35))
    results_public: Mapped[bool] = mapped_column(Boolean, default=False)
    requires_code: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    opens_on: Mapped[dt.date | None] = mapped_column(Date)
    closes_on: Mapped[dt.date | None] = mapped_column(Date)

    versions: Mapped[list[QuestionnaireVersion]] = relationship(
        back_populates="questionnaire", order_by="QuestionnaireVersion.number"
    )

    def effective_status(self, today: dt.date) -> str:
        """The status respondents see: an open questionnaire outside its dates is not open."""
        return effective_status(self.status, self.opens_on, self.closes_on, today)

    def _move(self, target: str) -> None:
        if target not in TRANSITIONS[self.status]:
            raise IllegalTransitionError(f"A {self.status} questionnaire cannot become {target}.")
        self.status = target

    def open(self) -> None:
        if not any(v.is_published for v in self.versions):
            raise IllegalTransitionError("Publish a version before opening the questionnaire.")
        self._move("open")

    def close(self) -> None:
        self._move("closed")

    def archive(self) -> None:
        self._move("archived")


class QuestionnaireVersion(Base):
    """One version of a definition. Once ``published_on`` is set it never changes again."""

    __tablename__ = "questionnaire_versions"
    __table_args__ = (UniqueConstraint("questionnaire_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    questionnaire_id: Mapped[int] = mapped_column(ForeignKey("questionnaires.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    definition: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    checksum: Mapped[str] = mapped_column(String(64))
    published_on: Mapped[dt.date | None] = mapped_column(Date)

    questionnaire: Mapped[Questionnaire] = relationship(back_populates="versions")
    questions: Mapped[list[Question]] = relationship(
        back_populates="version", order_by="Question.position", cascade="all, delete-orphan"
    )

    @property
    def is_published(self) -> bool:
        return self.published_on is not None


@event.listens_for(QuestionnaireVersion, "before_update")
def _published_versions_are_immutable(_mapper: Any, _connection: Any, version: QuestionnaireVersion) -> None:
    state = inspect(version)
    history = state.attrs.published_on.history
    published_before = (history.deleted or history.unchanged or [None])[0]
    if published_before is not None and any(
        state.attrs[key].history.has_changes()
        for key in ("definition", "checksum", "number", "published_on", "questionnaire_id")
    ):
        raise IllegalTransitionError("A published version cannot be changed; create a new version.")


class Question(Base):
    __tablename__ = "questions"
    __table_args__ = (UniqueConstraint("version_id", "code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("questionnaire_versions.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(63))
    type: Mapped[str] = mapped_column(String(32))
    section: Mapped[str] = mapped_column(String(63))
    position: Mapped[int] = mapped_column(SmallInteger)
    required: Mapped[bool] = mapped_column(Boolean, default=False)
    demographic: Mapped[bool] = mapped_column(Boolean, default=False)

    version: Mapped[QuestionnaireVersion] = relationship(back_populates="questions")
    options: Mapped[list[Option]] = relationship(order_by="Option.position", cascade="all, delete-orphan")
    items: Mapped[list[QuestionItem]] = relationship(order_by="QuestionItem.position", cascade="all, delete-orphan")


class Option(Base):
    """A choice, a scale point or a non-substantive code ("don't know") of one question."""

    __tablename__ = "options"
    __table_args__ = (UniqueConstraint("question_id", "code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    question_id: Mapped[int] = mapped_column(ForeignKey("questions.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(63))
    position: Mapped[int] = mapped_column(SmallInteger)
    value: Mapped[float | None] = mapped_column(Float)
    non_substantive: Mapped[bool] = mapped_column(Boolean, default=False)


class QuestionItem(Base):
    """A row of a matrix question."""

    __tablename__ = "question_items"
    __table_args__ = (UniqueConstraint("question_id", "code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    question_id: Mapped[int] = mapped_column(ForeignKey("questions.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(63))
    position: Mapped[int] = mapped_column(SmallInteger)


class ParticipationCode(Base):
    """A one-time invitation code, kept only as a keyed hash (promise P3).

    Deliberately unlinked: nothing here or in ``responses`` records which response a code enabled;
    spending it records only the day.
    """

    __tablename__ = "participation_codes"
    __table_args__ = (UniqueConstraint("questionnaire_id", "code_hash"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    questionnaire_id: Mapped[int] = mapped_column(ForeignKey("questionnaires.id", ondelete="CASCADE"))
    code_hash: Mapped[str] = mapped_column(String(64))
    spent_on: Mapped[dt.date | None] = mapped_column(Date)
