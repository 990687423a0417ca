"""The REST admin API in-process (FastAPI's TestClient) over a fake fleet: authentication on
every path of its own OpenAPI, problem+json for every error, the Host check and no CORS,
cursor pagination and Idempotency-Key."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.admin.app import create_app
from services.admin.errors import Conflict, NodeUnavailable, NotFound, Unprocessable
from services.admin.idempotency import IdempotencyStore
from services.admin.models import AppView, Heads, SequencerView
from services.admin.pagination import decode_cursor, encode_cursor
from services.admin.tokens import Tokens, ensure_tokens

PROBLEM = "application/problem+json"


class FakeFleet:
    """Apps by name; records what was asked of it."""

    def __init__(self, names: Sequence[str] = ("alpha", "beta")) -> None:
        self.apps = list(names)
        self.calls: list[tuple[str, str]] = []
        self.paused: set[str] = set()
        self.fail_next = False
        self.is_ready = True

    def ready(self) -> bool:
        return self.is_ready

    def names(self) -> list[str]:
        return list(self.apps)

    def view(self, names: Sequence[str]) -> list[AppView]:
        return [self._view(name) for name in names]

    def _view(self, name: str) -> AppView:
        self._check(name)
        return AppView(
            name=name,
            chain_id=1000 + self.apps.index(name),
            vm="native",
            rpc_url="http://127.0.0.1:1",
            address="0x" + "11" * 20,
            state="paused" if name in self.paused else "running",
            heads=Heads(unsafe=5, safe=4, finalized=None),
            mempool=None,
            tx_per_second=None,
            da_backlog_blocks=1,
            restarts=0,
            verifier=None,
            last_error=None,
        )

    def pause(self, name: str) -> SequencerView:
        return self._sequencer(name, "pause", True)

    def resume(self, name: str) -> SequencerView:
        return self._sequencer(name, "resume", False)

    def stop(self, name: str) -> AppView:
        return self._control(name, "stop")

    def start(self, name: str) -> AppView:
        return self._control(name, "start")

    def restart(self, name: str) -> AppView:
        return self._control(name, "restart")

    def _control(self, name: str, what: str) -> AppView:
        self._check(name)
        self.calls.append((what, name))
        return self._view(name)

    def _sequencer(self, name: str, what: str, paused: bool) -> SequencerView:
        self._check(name)
        self.calls.append((what, name))
        if self.fail_next:
            self.fail_next = False
            raise NodeUnavailable(f"the node of {name} does not answer")
        (self.paused.add if paused else self.paused.discard)(name)
        return SequencerView(name=name, paused=paused, head=5 + len(self.calls))

    def _check(self, name: str) -> None:
        if name not in self.apps:
            raise NotFound(f"no app named {name!r} in this devnet")


@pytest.fixture
def tokens(tmp_path: Path) -> Tokens:
    return ensure_tokens(tmp_path)


@pytest.fixture
def fleet() -> FakeFleet:
    return FakeFleet()


@pytest.fixture
def client(fleet: FakeFleet, tokens: Tokens) -> TestClient:
    return TestClient(create_app(fleet, tokens), base_url="http://127.0.0.1")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def operations(client: TestClient) -> list[tuple[str, str]]:
    """(method, concrete path) of every operation the API documents, {name} -> alpha."""
    paths = client.get("/openapi.json").json()["paths"]
    return [
        (method.upper(), re.sub(r"\{name\}", "alpha", path))
        for path, ops in paths.items()
        for method in ops
    ]


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["type"] == "about:blank"
    assert body["title"] and isinstance(body.get("detail"), str)
    return body


# ---- authentication, on every documented path ----

PUBLIC = {"/healthz", "/readyz"}


def test_the_api_documents_its_resources(client: TestClient) -> None:
    found = set(operations(client))
    assert {
        ("GET", "/v1/apps"),
        ("GET", "/v1/apps/alpha"),
        ("POST", "/v1/apps/alpha/sequencer/pause"),
        ("POST", "/v1/apps/alpha/sequencer/resume"),
        ("POST", "/v1/apps/alpha/start"),
        ("POST", "/v1/apps/alpha/stop"),
        ("POST", "/v1/apps/alpha/restart"),
        ("GET", "/healthz"),
        ("GET", "/readyz"),
    } <= found


def test_every_path_without_a_token_or_with_a_wrong_one_is_401(
    client: TestClient, tokens: Tokens, fleet: FakeFleet
) -> None:
    for method, path in operations(client):
        if path in PUBLIC:
            continue
        for headers in ({}, bearer("wrong"), bearer(tokens.admin + "x"), {"Authorization": "x"}):
            response = client.request(method, path, headers=headers)
            body = assert_problem(response, 401)
            assert response.headers["www-authenticate"] == "Bearer"
            assert body["instance"] == path
    assert fleet.calls == [] and fleet.paused == set()


def test_the_read_token_reads_and_is_403_on_every_mutating_path(
    client: TestClient, tokens: Tokens, fleet: FakeFleet
) -> None:
    mutating = [(m, p) for m, p in operations(client) if m != "GET"]
    assert mutating
    for method, path in mutating:
        assert_problem(client.request(method, path, headers=bearer(tokens.read)), 403)
    assert fleet.calls == []
    for method, path in operations(client):
        if method == "GET":
            assert client.get(path, headers=bearer(tokens.read)).status_code == 200, path


def test_probes_and_the_description_need_no_token(client: TestClient, fleet: FakeFleet) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"ready": True, "apps": 2}
    fleet.is_ready = False
    assert_problem(client.get("/readyz"), 503)
    schema = client.get("/openapi.json").json()
    assert schema["openapi"].startswith("3.")
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert "swagger" in client.get("/docs").text.lower()


def test_errors_are_documented_as_problems(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for ops in paths.values():
        for operation in ops.values():
            for status, response in operation["responses"].items():
                if status[0] in "45":
                    assert list(response["content"]) == [PROBLEM], (operation, status)


# ---- problem+json for every error ----


def test_unknown_paths_methods_and_apps_are_problems(client: TestClient, tokens: Tokens) -> None:
    assert_problem(client.get("/v2/nothing", headers=bearer(tokens.admin)), 404)
    assert_problem(client.delete("/v1/apps", headers=bearer(tokens.admin)), 405)
    body = assert_problem(client.get("/v1/apps/gamma", headers=bearer(tokens.admin)), 404)
    assert body["detail"] == "no app named 'gamma' in this devnet"
    pause = client.post("/v1/apps/gamma/sequencer/pause", headers=bearer(tokens.admin))
    assert_problem(pause, 404)


def test_validation_errors_are_problems_that_name_the_parameter(
    client: TestClient, tokens: Tokens
) -> None:
    body = assert_problem(client.get("/v1/apps?limit=0", headers=bearer(tokens.admin)), 422)
    assert body["errors"][0]["loc"] == ["query", "limit"]
    long_key = {"Idempotency-Key": "k" * 256, **bearer(tokens.admin)}
    body = assert_problem(client.post("/v1/apps/alpha/sequencer/pause", headers=long_key), 422)
    assert body["errors"][0]["loc"] == ["header", "Idempotency-Key"]


def test_a_node_that_fails_is_a_503_problem(
    client: TestClient, tokens: Tokens, fleet: FakeFleet
) -> None:
    fleet.fail_next = True
    response = client.post("/v1/apps/alpha/sequencer/pause", headers=bearer(tokens.admin))
    assert_problem(response, 503)


def test_a_foreign_host_header_is_refused(client: TestClient, tokens: Tokens) -> None:
    for host in ("evil.example", "evil.example:8580", "127.0.0.1.evil.example"):
        response = client.get("/healthz", headers={"Host": host})
        assert_problem(response, 400)
    for host in ("127.0.0.1:8580", "localhost", "[::1]:8580"):
        assert client.get("/healthz", headers={"Host": host}).status_code == 200, host


def test_no_cors_a_page_of_another_origin_gets_no_grant(client: TestClient, tokens: Tokens) -> None:
    preflight = client.options(
        "/v1/apps/alpha/sequencer/pause",
        headers={
            "Origin": "https://evil.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert "access-control-allow-origin" not in preflight.headers
    response = client.get(
        "/v1/apps", headers={"Origin": "https://evil.example", **bearer(tokens.read)}
    )
    assert "access-control-allow-origin" not in response.headers


# ---- the resources ----


def test_an_app_and_pause_resume(client: TestClient, tokens: Tokens, fleet: FakeFleet) -> None:
    app = client.get("/v1/apps/beta", headers=bearer(tokens.read)).json()
    assert app["name"] == "beta" and app["chain_id"] == 1001 and app["state"] == "running"
    assert app["heads"] == {"unsafe": 5, "safe": 4, "finalized": None}
    paused = client.post("/v1/apps/beta/sequencer/pause", headers=bearer(tokens.admin))
    assert paused.json() == {"name": "beta", "paused": True, "head": 6}
    assert client.get("/v1/apps/beta", headers=bearer(tokens.admin)).json()["state"] == "paused"
    resumed = client.post("/v1/apps/beta/sequencer/resume", headers=bearer(tokens.admin))
    assert resumed.json()["paused"] is False
    assert fleet.calls == [("pause", "beta"), ("resume", "beta")]


# ---- pagination ----


def test_pages_follow_the_cursor_to_the_end(tokens: Tokens) -> None:
    fleet = FakeFleet(["e", "c", "a", "d", "b"])
    client = TestClient(create_app(fleet, tokens), base_url="http://127.0.0.1")
    seen, cursor, pages = [], None, 0
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = client.get("/v1/apps", params=params, headers=bearer(tokens.read)).json()
        seen += [app["name"] for app in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
        if pages == 1:
            fleet.apps.remove("a")  # an app served already goes away: nothing is skipped
    assert seen == ["a", "b", "c", "d", "e"] and pages == 3
    one = client.get("/v1/apps", params={"limit": 100}, headers=bearer(tokens.read)).json()
    assert one["next_cursor"] is None and len(one["items"]) == 4


def test_a_cursor_of_another_shape_is_a_422(client: TestClient, tokens: Tokens) -> None:
    for cursor in ("!!!", "YQ=", "A", "abcde", "x" * 201):
        response = client.get("/v1/apps", params={"cursor": cursor}, headers=bearer(tokens.read))
        body = assert_problem(response, 422)
        assert body["errors"][0]["loc"] == ["query", "cursor"]
    assert decode_cursor(encode_cursor("tok-2")) == b"tok-2"
    # any cursor of the right shape is a position: the page starts after the key it names
    after_b = client.get(
        "/v1/apps", params={"cursor": encode_cursor("b")}, headers=bearer(tokens.read)
    )
    assert [app["name"] for app in after_b.json()["items"]] == ["beta"]
    after_all = client.get("/v1/apps", params={"cursor": "_w"}, headers=bearer(tokens.read))
    assert after_all.json()["items"] == []  # 0xff sorts after every name


def test_a_query_parameter_given_twice_is_a_400(client: TestClient, tokens: Tokens) -> None:
    response = client.get("/v1/apps?limit=1&limit=2", headers=bearer(tokens.read))
    assert assert_problem(response, 400)["detail"] == "query parameter limit given more than once"
    response = client.get("/v1/apps?limits=1", headers=bearer(tokens.read))
    assert assert_problem(response, 400)["detail"] == "unknown query parameter limits"
    assert_problem(client.get("/healthz?x=1"), 400)


# ---- Idempotency-Key ----


def test_a_retry_with_the_same_key_replays_the_first_response(
    client: TestClient, tokens: Tokens, fleet: FakeFleet
) -> None:
    headers = {"Idempotency-Key": "k1", **bearer(tokens.admin)}
    first = client.post("/v1/apps/alpha/sequencer/pause", headers=headers)
    again = client.post("/v1/apps/alpha/sequencer/pause", headers=headers)
    assert fleet.calls == [("pause", "alpha")]
    assert again.status_code == first.status_code == 200
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    other = client.post("/v1/apps/alpha/sequencer/resume", headers=headers)
    body = assert_problem(other, 422)
    assert "another request" in body["detail"]
    fresh = client.post("/v1/apps/alpha/sequencer/pause", headers=bearer(tokens.admin))
    assert "idempotent-replayed" not in fresh.headers and len(fleet.calls) == 2


def test_a_failed_request_is_not_kept_and_the_read_token_gets_no_replay(
    client: TestClient, tokens: Tokens, fleet: FakeFleet
) -> None:
    headers = {"Idempotency-Key": "k2", **bearer(tokens.admin)}
    fleet.fail_next = True
    assert_problem(client.post("/v1/apps/alpha/sequencer/pause", headers=headers), 503)
    assert client.post("/v1/apps/alpha/sequencer/pause", headers=headers).status_code == 200
    assert len(fleet.calls) == 2
    read = {"Idempotency-Key": "k2", **bearer(tokens.read)}
    assert_problem(client.post("/v1/apps/alpha/sequencer/pause", headers=read), 403)


def test_the_store_is_bounded_and_refuses_a_retry_while_the_first_runs() -> None:
    store = IdempotencyStore(max_keys=2)
    assert store.begin((b"t", "a"), b"f") is None
    with pytest.raises(Conflict):
        store.begin((b"t", "a"), b"f")
    with pytest.raises(Unprocessable):
        store.begin((b"t", "a"), b"g")
    assert store.begin((b"other token", "a"), b"f") is None  # keys are per token
    assert store.begin((b"t", "c"), b"f") is None
    assert store.begin((b"t", "a"), b"f") is None  # the oldest was let go
