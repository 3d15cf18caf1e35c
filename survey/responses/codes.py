"""One-time participation codes (promise P3): made in batches, stored only as keyed hashes, spent once.

A questionnaire with ``requires_code`` accepts a response only with an unspent code, and spends it
in the same transaction that stores the response. Nothing links the code to the response: the code
row keeps only the day it was spent.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import secrets

from flask import current_app
from sqlalchemy import Connection, select, update

from survey.accounts.models import User
from survey.accounts.services import record
from survey.db import db, unit_of_work
from survey.i18n import gettext
from survey.questionnaires.models import ParticipationCode, Questionnaire
from survey.questionnaires.services import SubmissionTarget, today

# No 0/O, 1/I/L, 5/S, 2/Z: codes are read aloud and typed on phones.
ALPHABET = "346789ABCDEFGHJKMNPQRTUVWXY"
GROUPS, GROUP_LENGTH = 3, 4  # 27**12: about 57 bits


def normalise(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


def code_hash(questionnaire: Questionnaire | SubmissionTarget, code: str) -> str:
    """HMAC-SHA256 under a key derived from the app secret; without the secret a hash reveals nothing."""
    key = hmac.new(current_app.config["SECRET_KEY"].encode(), b"participation-codes", hashlib.sha256).digest()
    message = f"{questionnaire.code}:{normalise(code)}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def issue_codes(questionnaire: Questionnaire, count: int, actor: User | None = None, require: bool = True) -> list[str]:
    """Make ``count`` codes, make the questionnaire require one (unless told not to) and audit it."""
    with unit_of_work():
        made = generate_codes(questionnaire, count)
        questionnaire.requires_code = require or questionnaire.requires_code
        record(actor, "questionnaire.codes", "questionnaire", questionnaire.code, count=count)
    return made


def codes_csv(codes: list[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["participation_code"])
    writer.writerows([code] for code in codes)
    return out.getvalue()


def generate_codes(questionnaire: Questionnaire, count: int) -> list[str]:
    """Make ``count`` new codes for the questionnaire; the codes themselves are returned, never stored."""
    codes: list[str] = []
    with unit_of_work():
        while len(codes) < count:
            raw = "".join(secrets.choice(ALPHABET) for _ in range(GROUPS * GROUP_LENGTH))
            code = "-".join(raw[i : i + GROUP_LENGTH] for i in range(0, len(raw), GROUP_LENGTH))
            if code in codes:
                continue
            codes.append(code)
            db.session.add(
                ParticipationCode(questionnaire_id=questionnaire.id, code_hash=code_hash(questionnaire, code))
            )
        db.session.flush()
    return codes


def used_message() -> str:
    return gettext("This code is not valid or has already been used.")


def is_usable(questionnaire: Questionnaire, code: str) -> bool:
    return (
        db.session.scalar(
            select(ParticipationCode.id).where(
                ParticipationCode.questionnaire_id == questionnaire.id,
                ParticipationCode.code_hash == code_hash(questionnaire, code),
                ParticipationCode.spent_on.is_(None),
            )
        )
        is not None
    )


def spend(connection: Connection, questionnaire: Questionnaire | SubmissionTarget, code: str) -> bool:
    """Mark the code spent in the transaction of ``connection``; False if it is unknown or already
    spent (a concurrent spend waits and loses)."""
    codes = ParticipationCode.__table__
    result = connection.execute(
        update(codes)
        .where(
            codes.c.questionnaire_id == questionnaire.id,
            codes.c.code_hash == code_hash(questionnaire, code),
            codes.c.spent_on.is_(None),
        )
        .values(spent_on=today())
    )
    return result.rowcount == 1
