"""Helpers for the staff page tests: the CSRF token of a page, logging in through the real form."""

from __future__ import annotations

import io
import json
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

from werkzeug.test import TestResponse

from survey.accounts.models import User
from tests.staff import PASSWORD

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(response: TestResponse) -> str:
    found = CSRF_FIELD.search(response.get_data(as_text=True))
    assert found, "the page has no CSRF token"
    return found.group(1)


def csrf_token(client: Any, url: str = "/admin/login") -> str:
    """A CSRF token valid for the client's current session, read from a page as a browser would."""
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return csrf_of(response)


def submit_login(client: Any, email: str, password: str = PASSWORD, next_url: str | None = None) -> TestResponse:
    """Fill in and send the login form (with the token of a freshly loaded login page)."""
    page = "/admin/login" + (f"?next={next_url}" if next_url is not None else "")
    token = csrf_token(client, page)
    data = {"csrf_token": token, "email": email, "password": password}
    if next_url is not None:
        data["next"] = next_url
    return client.post("/admin/login", data=data)


def log_in(client: Any, user: User) -> str:
    """Log ``user`` in through the login form; returns a CSRF token of the new session."""
    response = submit_login(client, user.email)
    assert response.status_code == 303, response.get_data(as_text=True)
    return csrf_token(client, "/admin/tokens")


def upload(definition: dict[str, Any] | bytes, name: str = "definition.json") -> tuple[io.BytesIO, str]:
    """A file field for a multipart form."""
    data = definition if isinstance(definition, bytes) else json.dumps(definition).encode()
    return io.BytesIO(data), name


def login_redirect_target(response: TestResponse) -> str | None:
    """The ``next`` of a redirect to the login page, or None if it is not one."""
    if response.status_code not in (302, 303):
        return None
    location = urlsplit(response.headers["Location"])
    if location.path != "/admin/login":
        return None
    return parse_qs(location.query).get("next", [""])[0]
