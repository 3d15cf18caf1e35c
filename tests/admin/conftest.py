"""The staff page tests need a browser-like client: each request in an application context of its own.

The shared ``app`` fixture keeps one application context open for the whole test, and Flask reuses an
open context for every request, so ``g`` would outlive a request: Flask-Login's cached user and
Flask-WTF's cached CSRF token would leak from one request into the next and hide exactly what these
tests check (a new session at login, an old cookie refused after logout). Here every request gets a
fresh context, as it does under a real server; its database session still joins the test's
rolled-back transaction.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient


class PageClient(FlaskClient):
    """Each request in a fresh application context, the body read before that context ends."""

    def open(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("buffered", True)  # read a streamed body inside the request's context
        with self.application.app_context():
            return super().open(*args, **kwargs)


def browser(app: Flask) -> PageClient:
    """A client that, like a browser, asks for HTML (error pages are then pages, not problem+json)."""
    client = PageClient(app, app.response_class, use_cookies=True)
    client.environ_base["HTTP_ACCEPT"] = "text/html,application/xhtml+xml,*/*;q=0.8"
    return client


@pytest.fixture
def client(app: Flask) -> PageClient:
    return browser(app)


@pytest.fixture
def other_browser(app: Flask) -> PageClient:
    """A second browser with cookies of its own (another person, or the same one elsewhere)."""
    return browser(app)
