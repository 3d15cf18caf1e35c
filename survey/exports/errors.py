"""Errors of the export feature (to be moved into ``survey/errors.py`` with the other domain errors)."""

from __future__ import annotations

from typing import Any

from survey.errors import SurveyError


class ExportOptionsInvalidError(SurveyError):
    """An export was asked for with options that do not fit the questionnaire (unknown version,
    language or format, a quasi-identifier that is not a categorical column...)."""

    status, code, title = 422, "export_options_invalid", "The export options are invalid"


class ExportRefusedError(SurveyError):
    """A partner export would not meet the disclosure rules; ``report`` says why."""

    status, code, title = 409, "export_refused", "The export would not meet the disclosure rules"

    def __init__(self, detail: str, report: Any) -> None:
        super().__init__(detail, {"k_anonymity": report.as_dict()})
        self.report = report
