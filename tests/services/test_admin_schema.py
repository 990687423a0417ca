"""Schemathesis against the admin API's own /openapi.json, in-process, with the admin token:
no 5xx, and every answer (its status, content type, headers and body) matches the schema."""

from __future__ import annotations

import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings

from services.admin.app import create_app
from services.admin.hosts import LOOPBACK_HOSTS
from services.admin.tokens import ensure_tokens
from tests.services.test_admin import FakeFleet

_DATA = tempfile.TemporaryDirectory(prefix="admin-schema-")
TOKENS = ensure_tokens(Path(_DATA.name))
HOSTS = ("testserver", *LOOPBACK_HOSTS)  # the in-process client's Host
APP = create_app(FakeFleet(["alpha", "beta", "gamma"]), TOKENS, HOSTS)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_answers_as_its_schema_says(case: schemathesis.Case) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {TOKENS.admin}"})
