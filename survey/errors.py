"""Domain exceptions and their one mapping to HTTP problem documents (RFC 9457).

Services raise ``<Thing><Problem>Error``; nothing else decides status codes. Every error the app
returns, domain or HTTP or unexpected, is ``application/problem+json`` with ``type``, ``title``,
``status``, ``detail``, a machine-readable ``code`` and, for validation, ``errors``. No body ever
carries a traceback, SQL or a file path.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

from flask import Flask, Response, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DataError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


class SurveyError(Exception):
    """Base of every domain error: a status, a stable code and a human title."""

    status = 400
    code = "bad_request"
    title = "Bad request"

    def __init__(self, detail: str | None = None, errors: dict[str, Any] | None = None) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.errors = errors


class NotFoundError(SurveyError):
    status, code, title = 404, "not_found", "Not found"


class QuestionnaireNotFoundError(NotFoundError):
    code, title = "questionnaire_not_found", "No such questionnaire"


class QuestionnaireNotOpenError(SurveyError):
    status, code, title = 409, "questionnaire_not_open", "The questionnaire is not open"

    def __init__(self, status_name: str) -> None:
        super().__init__(f"The questionnaire is {status_name} and accepts no responses.")
        self.code = f"questionnaire_{status_name}"


class VersionNotFoundError(SurveyError):
    status, code, title = 409, "version_not_published", "No such published version"


class IllegalTransitionError(SurveyError):
    status, code, title = 409, "illegal_transition", "That change of status is not allowed"


class DefinitionInvalidError(SurveyError):
    status, code, title = 422, "definition_invalid", "The questionnaire definition is invalid"


class SubmissionInvalidError(SurveyError):
    status, code, title = 422, "submission_invalid", "The submission is invalid"


class SubmissionConflictError(SurveyError):
    status, code, title = 409, "submission_conflict", "A different submission with this id exists"


class AuthenticationRequiredError(SurveyError):
    status, code, title = 401, "authentication_required", "Authentication required"


class PermissionDeniedError(SurveyError):
    status, code, title = 403, "permission_denied", "Your role does not allow this"


class LoginFailedError(SurveyError):
    # One message for an unknown e-mail and a wrong password: no account enumeration.
    status, code, title = 401, "login_failed", "Wrong e-mail address or password"


class LoginLockedError(SurveyError):
    status, code, title = 429, "login_locked", "Too many failed logins; try again later"

    def __init__(self, retry_after: int) -> None:
        super().__init__()
        self.retry_after = retry_after


class RateLimitedError(SurveyError):
    status, code, title = 429, "rate_limited", "Too many requests; try again later"

    def __init__(self, retry_after: int) -> None:
        super().__init__()
        self.retry_after = retry_after


class ResultsNotPublicError(NotFoundError):
    code, title = "results_not_public", "These results are not public"


class NothingPublishedError(SurveyError):
    status, code, title = 409, "nothing_published", "No version of this questionnaire is published yet"


class SnapshotTooLargeError(SurveyError):
    """A snapshot asked for in a request would take longer to compute than a request may last."""

    status, code, title = 409, "snapshot_too_large", "Too many responses to tabulate in a request"


class BreakdownInvalidError(SurveyError):
    status, code, title = 422, "breakdown_invalid", "That breakdown is not offered"


class UserInvalidError(SurveyError):
    status, code, title = 422, "user_invalid", "The user details are invalid"


class UserExistsError(SurveyError):
    status, code, title = 409, "user_exists", "A user with this e-mail address exists"


class SettingsInvalidError(SurveyError):
    status, code, title = 422, "settings_invalid", "The settings are invalid"


class QuestionnaireExistsError(SurveyError):
    status, code, title = 409, "questionnaire_exists", "A questionnaire with this code exists"


class ServiceUnavailableError(SurveyError):
    status, code, title = 503, "service_unavailable", "The service is briefly unavailable"


class ExportOptionsInvalidError(SurveyError):
    """An export was asked for with options that do not fit the questionnaire (unknown version,
    language or format, a quasi-identifier that is not a categorical column...)."""

    status, code, title = 422, "export_options_invalid", "The export options are invalid"


class ExportRefusedError(SurveyError):
    """A partner export would not meet the disclosure rules; ``report`` (a ``KAnonymityReport``) says why."""

    status, code, title = 409, "export_refused", "The export would not meet the disclosure rules"

    def __init__(self, detail: str, report: Any) -> None:
        super().__init__(detail, {"k_anonymity": report.as_dict()})
        self.report = report


def problem(
    status: int,
    title: str,
    detail: str | None = None,
    code: str | None = None,
    errors: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    body["detail"] = detail or title
    body["code"] = code or _slug(title)
    if errors is not None:
        body["errors"] = errors
    response = jsonify(body)
    response.status_code = status
    response.mimetype = PROBLEM_JSON
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _slug(title: str) -> str:
    return "_".join("".join(c if c.isalnum() else " " for c in title.lower()).split())


def _wants_page() -> bool:
    """Browsers on the public and staff pages get an HTML page; everything else problem+json."""
    return not request.path.startswith(("/api/", "/health")) and request.accept_mimetypes.accept_html


def _page(status: int, detail: str | None = None, headers: dict[str, str] | None = None) -> Response:
    from survey.i18n import LANGUAGES, gettext, use_language

    language = getattr(request, "survey_language", None) or use_language(LANGUAGES, request.args.get("lang"), "en")
    titles = {
        400: gettext("The request could not be understood."),
        403: gettext("This is not allowed."),
        404: gettext("Page not found."),
        405: gettext("This is not allowed."),
        409: gettext("This cannot be done now."),
        413: gettext("What was sent is too large."),
        503: gettext("The service is briefly unavailable. Please try again in a moment."),
    }
    title = titles.get(status, gettext("Something went wrong."))
    body = render_template("error.html", title=title, detail=detail or title, lang=language, languages=[])
    response = Response(body, status=status, mimetype="text/html")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _handle_domain_error(error: SurveyError) -> Response:
    headers: dict[str, str] | None = None
    if error.status == 503:
        headers = {"Retry-After": "5"}
    elif isinstance(error, LoginLockedError | RateLimitedError):
        headers = {"Retry-After": str(error.retry_after)}
    elif error.status == 401 and request.path.startswith("/api/"):
        headers = {"WWW-Authenticate": 'Bearer realm="survey-admin"'}
    if _wants_page():
        return _page(error.status, None, headers)
    return problem(error.status, error.title, error.detail, error.code, error.errors, headers)


def _handle_csrf_error(error: CSRFError) -> Response:
    if _wants_page():
        from survey.i18n import gettext

        return _page(
            400,
            gettext(
                "This page was open for too long or cookies are blocked. Go back, reload the page and send it again."
            ),
        )
    return _handle_http_exception(error)


def _handle_http_exception(error: HTTPException) -> Response:
    status = error.code or 500
    if _wants_page():
        extra = {k: v for k, v in error.get_headers() if k.lower() == "allow"}
        return _page(status, None, extra)
    errors = None
    data = getattr(error, "data", None)  # webargs / flask-smorest attach validation messages here
    if isinstance(data, dict) and "messages" in data:
        errors = _unwrap_locations(data["messages"])
    detail = error.description if isinstance(error.description, str) else None
    title = error.name
    if status == 422 and errors is not None:
        title, detail = SubmissionInvalidError.title, "The request has invalid fields."
    extra = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
    return problem(status, title, detail, None, errors, extra)


def _unwrap_locations(messages: dict[str, Any]) -> dict[str, Any]:
    """webargs keys errors by location ({"json": {...}}); clients only ever send JSON bodies."""
    if set(messages) <= {"json", "query", "view_args", "form"}:
        merged: dict[str, Any] = {}
        for part in messages.values():
            merged.update(part)
        return merged
    return messages


def _handle_database_error(error: Exception) -> Response:
    # Connection loss, pool exhaustion, a database restart: the request did not complete and
    # left nothing behind (the unit of work rolled back), so the client may retry.
    log.warning("database unavailable: %s", type(error).__name__)
    _discard_transaction()
    return _handle_domain_error(ServiceUnavailableError())


def _discard_transaction() -> None:
    """A failed statement leaves the session's transaction unusable: end it before answering."""
    from survey.db import db

    try:
        db.session.rollback()
    except Exception:  # the connection itself may be gone; the pool replaces it
        log.warning("rollback after a database error failed")


def _handle_data_error(error: DataError) -> Response:
    # Input that passed validation but not the database (a bound the schemas missed): still the
    # client's input, so a 400, and logged so that the missing validation gets added.
    log.warning("database refused a value: %s", type(error.orig).__name__)
    _discard_transaction()
    if _wants_page():
        return _page(400)
    return problem(400, "Bad Request", "A value is out of range.", "value_out_of_range")


def _handle_unexpected(error: Exception) -> Response:
    # Where it happened, never what the exception says: a message can quote an answer, a title with line
    # breaks or SQL parameters, and the logs must hold none of them (promise S14).
    causes = []
    cause: BaseException | None = error
    while cause is not None and len(causes) < 10:
        causes.append(type(cause).__qualname__)
        cause = cause.__cause__ or cause.__context__
    frames = "".join(traceback.format_tb(error.__traceback__)).rstrip()
    log.error("unhandled error %s\n%s", " <- ".join(causes), frames)
    if _wants_page():
        return _page(500)
    return problem(500, "Internal server error", "An unexpected error occurred.", "internal_error")


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(SurveyError, _handle_domain_error)
    app.register_error_handler(CSRFError, _handle_csrf_error)
    app.register_error_handler(HTTPException, _handle_http_exception)
    app.register_error_handler(DataError, _handle_data_error)
    for unavailable in (OperationalError, InterfaceError, PoolTimeoutError):
        app.register_error_handler(unavailable, _handle_database_error)
    app.register_error_handler(Exception, _handle_unexpected)
