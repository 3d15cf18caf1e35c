"""Security headers on every route and status (S1), cookies (S2) and CSRF on every staff page action (S3).

Every rule of ``app.url_map`` is requested with its path arguments filled with existing values (the ordinary
answer, whatever its status), with unknown values (404), with a method it does not allow (405), with a body over
the limit where it reads one (413), and with its view made to raise (500). Every response must carry the headers
of promise S1; API, staff and export responses must not be stored by caches; text has a charset.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask, request
from werkzeug.routing import Rule

from survey import create_app
from survey.accounts.services import create_token
from survey.db import unit_of_work
from survey.questionnaires.services import create_questionnaire, get_questionnaire, open_questionnaire
from tests.admin.conftest import PageClient, browser
from tests.admin.pages import csrf_token, log_in
from tests.factories import all_types_definition, submission
from tests.staff import Staff, make_staff

CODE = "hdr_test"
UNKNOWN = {"code": "no_such_code", "number": 999999, "user_id": 2147483647, "token_id": 2147483647}
BODY_METHODS = ("POST", "PUT", "PATCH")
CSP_DIRECTIVES = (
    "default-src 'self'",
    "script-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
    "form-action 'self'",
)


def header_problems(response: Any, path: str) -> list[str]:
    """What promise S1 misses in one response (an empty list when it holds)."""
    headers = response.headers
    problems = []
    if headers.get("X-Content-Type-Options") != "nosniff":
        problems.append("X-Content-Type-Options")
    if headers.get("Referrer-Policy") != "no-referrer":
        problems.append("Referrer-Policy")
    if headers.get("Cross-Origin-Opener-Policy") != "same-origin":
        problems.append("Cross-Origin-Opener-Policy")
    policy = headers.get("Content-Security-Policy", "")
    if any(directive not in policy for directive in CSP_DIRECTIVES) or re.search(r"unsafe-(inline|eval)", policy):
        problems.append(f"Content-Security-Policy {policy!r}")
    hsts = re.fullmatch(r"max-age=(\d+); includeSubDomains", headers.get("Strict-Transport-Security", ""))
    if not hsts or int(hsts.group(1)) < 31536000:
        problems.append("Strict-Transport-Security")
    private = path.startswith(("/api/", "/admin", "/s/")) or "attachment" in headers.get("Content-Disposition", "")
    if private and "no-store" not in headers.get("Cache-Control", ""):
        problems.append(f"Cache-Control {headers.get('Cache-Control')!r}")
    if response.mimetype.startswith("text/") and "charset=utf-8" not in headers.get("Content-Type", "").lower():
        problems.append(f"charset {headers.get('Content-Type')!r}")
    if response.status_code == 405 and not headers.get("Allow"):
        problems.append("Allow")
    return problems


class Visitor:
    """Requests as staff would make them: the API with an admin token, pages in a logged-in admin browser."""

    def __init__(self, app: Flask, people: dict[str, Staff]) -> None:
        self.app = app
        self.admin = people["admin"]
        self.api = app.test_client()
        self.page, self.token = self._log_in()

    def _log_in(self) -> tuple[PageClient, str]:
        page = browser(self.app)
        return page, log_in(page, self.admin.user)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        if path.startswith("/api/"):
            headers = {**self.admin.headers, **kwargs.pop("headers", {})}
            return self.api.open(path, method=method, headers=headers, buffered=True, **kwargs)
        if method == "POST" and "data" not in kwargs:
            kwargs["data"] = {"csrf_token": self.token}
        response = self.page.open(path, method=method, **kwargs)
        if path == "/admin/logout" and response.status_code == 303:
            self.page, self.token = self._log_in()  # carry on logged in
        return response


@pytest.fixture
def people(app: Flask) -> dict[str, Staff]:
    return make_staff()


@pytest.fixture
def existing(app: Flask, people: dict[str, Staff]) -> dict[str, Any]:
    """Path arguments that name things that exist (a spare token and the analyst are safe to change)."""
    questionnaire = create_questionnaire(all_types_definition(CODE), results_public=True)
    open_questionnaire(questionnaire)
    spare, _secret = create_token(people["admin"].user, "spare")
    return {
        "code": CODE,
        "number": 1,
        "user_id": people["analyst"].user.id,
        "token_id": spare.id,
        "filename": "survey.css",
    }


def rules(app: Flask) -> list[Rule]:
    return sorted(app.url_map.iter_rules(), key=lambda rule: (rule.rule == "/admin/logout", rule.rule))


def methods_of(rule: Rule) -> list[str]:
    return sorted(rule.methods - {"HEAD", "OPTIONS"})  # type: ignore[operator]


def fill(rule: Rule, values: dict[str, Any]) -> str:
    def value(match: re.Match[str]) -> str:
        converter, name = match.group(1), match.group(2)
        if converter and converter.startswith("any("):
            return converter[4:-1].split(",")[0].strip()
        return quote(str(values.get(name, "nope.css")), safe="")

    return re.sub(r"<(?:([^:<>]+):)?(\w+)>", value, rule.rule)


def call(visitor: Visitor, method: str, path: str) -> Any:
    """One request with the body the route expects (a valid one where it matters)."""
    kwargs: dict[str, Any] = {}
    if method in BODY_METHODS and path.startswith("/api/"):
        kwargs = {"json": {"count": 1} if path.endswith("/codes") else {}}
        if path.endswith("/responses"):
            kwargs = {"json": submission()}
    return visitor.request(method, path, **kwargs)


def template(rule: Rule) -> str:
    return re.sub(r"<(?:[^:<>]+:)?(\w+)>", r"{\1}", rule.rule)


def ordinary(visitor: Visitor, rule: Rule, values: dict[str, Any]) -> Iterator[tuple[str, str, Any]]:
    for method in methods_of(rule):
        path = fill(rule, values)
        yield method, path, call(visitor, method, path)


def test_every_route_and_status_carries_the_security_headers(app, people, existing):
    visitor = Visitor(app, people)
    failures: list[tuple[Any, ...]] = []
    statuses: dict[int, int] = {}
    routes = rules(app)
    assert len(routes) > 50

    def check(method: str, path: str, response: Any, expected: int | None = None) -> None:
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        if expected is not None and response.status_code != expected:
            failures.append((method, path, "status", response.status_code, expected))
        if problems := header_problems(response, path):
            failures.append((method, path, response.status_code, problems))

    for rule in routes:  # the ordinary answer (200 where reachable)
        for method, path, response in ordinary(visitor, rule, existing):
            if response.status_code >= 500:
                failures.append((method, path, "server error", response.status_code))
            check(method, path, response)
    for rule in routes:  # unknown objects
        if rule.arguments - {"action"}:
            method, path = methods_of(rule)[0], fill(rule, UNKNOWN)
            check(method, path, call(visitor, method, path), 404)
    for path in ("/api/v1/nothing-here", "/admin/nothing-here", "/nothing-here", "/s/a/b/c"):
        check("GET", path, visitor.request("GET", path), 404)
    for rule in routes:  # a method the route does not take
        other = next(m for m in ("PUT", "DELETE", "PATCH", "GET") if m not in rule.methods)  # type: ignore[operator]
        check(other, fill(rule, existing), visitor.request(other, fill(rule, existing)), 405)
    big = b"x" * (app.config["MAX_CONTENT_LENGTH"] + 1)
    spec = visitor.api.get("/api/v1/openapi.json").json["paths"]
    reads_body = {(m.upper(), path) for path, ops in spec.items() for m, op in ops.items() if "requestBody" in op}
    for rule in routes:  # a body over the limit, wherever a body is read (every page form; the API's bodies)
        for method in (m for m in methods_of(rule) if m in BODY_METHODS):
            path = fill(rule, existing)
            if path.startswith("/api/"):
                if (method, template(rule)) in reads_body:
                    check(method, path, visitor.request(method, path, data=big, content_type="application/json"), 413)
            else:
                form = "application/x-www-form-urlencoded"
                check(method, path, visitor.request(method, path, data=big, content_type=form), 413)
    for rule in routes:  # the view itself fails
        view = app.view_functions[rule.endpoint]
        app.view_functions[rule.endpoint] = _raise
        try:
            for method in methods_of(rule):
                path = fill(rule, existing)
                response = call(visitor, method, path)
                check(method, path, response, 500)
                body = response.get_data(as_text=True)
                if "Traceback" in body or "secret detail" in body:
                    failures.append((method, path, "the error shows its details"))
        finally:
            app.view_functions[rule.endpoint] = view
    assert not failures, failures
    assert {200, 303, 404, 405, 413, 500} <= set(statuses)


def _raise(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("secret detail of an injected failure")


# -- S2: cookies ------------------------------------------------------------------------------------------


def set_cookies(response: Any) -> list[str]:
    return response.headers.getlist("Set-Cookie")


def test_public_pages_set_no_persistent_cookie(app, client, existing):
    assert set_cookies(client.get("/")) == []
    assert set_cookies(client.get(f"/results/{CODE}")) == []
    assert set_cookies(client.get("/api/v1/questionnaires")) == []
    assert set_cookies(client.post(f"/api/v1/questionnaires/{CODE}/responses", json=submission())) == []
    form = browser(app)
    cookies = set_cookies(form.get(f"/s/{CODE}"))
    assert len(cookies) == 1 and cookies[0].startswith("session=")  # the form's CSRF token, nothing else
    attributes = cookies[0].lower()
    assert "expires=" not in attributes and "max-age=" not in attributes  # ends with the browser session
    assert "httponly" in attributes and "samesite=strict" in attributes and "domain=" not in attributes


def test_the_api_neither_reads_nor_sets_the_session_cookie(app, existing):
    """A session cookie that rides along to the API is not even opened; pages still read it."""
    cookie = app.session_interface.get_signing_serializer(app).dumps({"_user_id": "1:1", "seen_at": 1})  # type: ignore[attr-defined]
    header = {"Cookie": f"{app.config['SESSION_COOKIE_NAME']}={cookie}"}
    for path, is_api in (("/api/v1/questionnaires", True), (f"/api/v1/questionnaires/{CODE}/responses", True),
                         (f"/s/{CODE}", False), ("/admin/login", False)):  # fmt: skip
        with app.test_request_context(path, headers=header):
            opened = app.session_interface.open_session(app, request)
            assert app.session_interface.is_null_session(opened) is is_api, path
            assert is_api or opened["_user_id"] == "1:1"
    form = browser(app)
    form.get(f"/s/{CODE}")  # the browser now holds a session cookie, which goes along with every request
    response = form.post(f"/api/v1/questionnaires/{CODE}/responses", json=submission())
    assert response.status_code == 201 and set_cookies(response) == []


def test_the_staff_session_cookie(app, people, monkeypatch):
    secure_app = create_app(
        {"TESTING": True, "DATABASE_URL": "sqlite://", "SECRET_KEY": "x", "SESSION_COOKIE_SECURE": True}
    )
    assert secure_app.config["SESSION_COOKIE_NAME"] == "__Host-session"
    for name, value in (("SESSION_COOKIE_SECURE", True), ("SESSION_COOKIE_NAME", "__Host-session")):
        monkeypatch.setitem(app.config, name, value)
    visitor = PageClient(app, app.response_class, use_cookies=True)
    https = {"base_url": "https://survey.example"}
    page = visitor.get("/admin/login", **https)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    credentials = {"csrf_token": token, "email": people["admin"].user.email, "password": "correct horse battery staple"}
    response = visitor.post("/admin/login", data=credentials, **https)
    assert response.status_code == 303
    (cookie,) = set_cookies(response)
    name, _value = cookie.split(";")[0].split("=", 1)
    attributes = [part.strip().lower() for part in cookie.split(";")[1:]]
    assert name == "__Host-session"
    assert {"secure", "httponly", "path=/", "samesite=strict"} <= set(attributes)
    assert not [a for a in attributes if a.startswith(("domain=", "expires=", "max-age="))]


def test_without_https_the_cookie_is_still_httponly_and_strict(app, people):
    visitor = browser(app)
    token = csrf_token(visitor)
    response = visitor.post(
        "/admin/login",
        data={"csrf_token": token, "email": people["admin"].user.email, "password": "correct horse battery staple"},
    )
    (cookie,) = set_cookies(response)
    assert cookie.startswith("session=")
    assert {"httponly", "samesite=strict", "path=/"} <= {part.strip().lower() for part in cookie.split(";")[1:]}


# -- S3: CSRF on every state-changing staff page ---------------------------------------------------------


def test_every_staff_page_action_needs_the_token_and_this_origin(app, people, existing):
    visitor = Visitor(app, people)
    state_before = _state()
    page_posts = [rule for rule in rules(app) if "POST" in rule.methods and not rule.rule.startswith("/api/")]  # type: ignore[operator]
    readable = {rule.rule for rule in app.url_map.iter_rules() if "GET" in rule.methods}  # type: ignore[operator]
    assert len(page_posts) >= 12
    failures = []
    for rule in page_posts:
        path = fill(rule, existing)
        without_token = visitor.page.post(path, data={"name": "x"})
        if without_token.status_code != 400:
            failures.append((path, "no token", without_token.status_code))
        for foreign in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
            refused = visitor.page.post(path, data={"csrf_token": visitor.token}, headers=foreign)
            if refused.status_code != 403:
                failures.append((path, foreign, refused.status_code))
        if rule.rule not in readable:  # a path that only changes things
            got = visitor.page.get(path)
            if got.status_code != 405 or "POST" not in got.headers.get("Allow", ""):
                failures.append((path, "GET", got.status_code))
    assert not failures, failures
    assert _state() == state_before


def _state() -> tuple[Any, ...]:
    from tests.corpus.places import counts, snapshot_of_settings, users_state

    return counts(), snapshot_of_settings(), users_state()


def test_the_same_origin_is_accepted(app, people, existing):
    visitor = Visitor(app, people)
    response = visitor.page.post(
        f"/admin/questionnaires/{CODE}/close",
        data={"csrf_token": visitor.token},
        headers={"Origin": "http://localhost"},
    )
    assert response.status_code == 303
    with unit_of_work():
        assert get_questionnaire(CODE).status == "closed"
