"""Schemathesis fuzzes every operation of the OpenAPI document in process, admin ones with a token.

Checks: no server error, status codes, content types and response bodies as documented. NUL bytes
and lone surrogates are generated too (schemathesis' defaults), so the 4xx paths are exercised.
The operations are driven one by one from a test (rather than schemathesis' pytest loader) so that
each runs inside the test's rolled-back transaction on each configured database.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.staff import make_staff

CHECKS = (not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance)
EXAMPLES = 25


def test_every_operation_holds_its_contract(app):
    token = make_staff()["admin"].token
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 20
    for operation in operations:
        headers = {"Authorization": f"Bearer {token}"} if operation.path.startswith("/api/v1/admin") else {}
        fuzz(operation, headers)


def fuzz(operation: schemathesis.APIOperation, headers: dict[str, str]) -> None:
    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def holds(case: schemathesis.Case) -> None:
        response = case.call(headers=headers)
        case.validate_response(response, checks=CHECKS)

    holds()
