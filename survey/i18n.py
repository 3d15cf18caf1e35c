"""Translation hooks. Messages shown to respondents are marked with :func:`gettext` so that the web
pages can show them in the respondent's language; outside a request they stay in English."""

from __future__ import annotations

from typing import Any

from flask import has_request_context

LANGUAGES = ("en", "sq", "sr-Latn", "sr-Cyrl")


def gettext(message: str, **variables: Any) -> str:
    if has_request_context():
        try:
            from flask_babel import gettext as babel_gettext

            return babel_gettext(message, **variables)
        except (KeyError, RuntimeError):  # Babel not initialised on this app
            pass
    return message % variables if variables else message
