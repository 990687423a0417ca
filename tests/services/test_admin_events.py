"""/v1/events and the dashboard's files, over a fake fleet: the event log's ring and resume,
what the sampler finds between samples, the node metrics it reads, and the stream itself
through a real uvicorn on loopback (snapshot, live events, Last-Event-ID, reset, the read
token as a header only, the bound on open streams); the dashboard and /docs with no CDN."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import tomllib
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.admin import dashboard
from services.admin import stream as stream_module
from services.admin.app import create_app
from services.admin.events import EventLog, changes
from services.admin.models import AppView, Heads, SequencerView, VerifierView
from services.admin.sampler import Metrics, Sampler, latency_ms, parse_metrics
from services.admin.stream import EventStream, StreamSlots
from services.admin.tokens import Tokens, ensure_tokens
from services.process import free_port

SSE = {"Accept": "text/event-stream"}


class MovingFleet:
    """One app whose view the test changes between samples."""

    def __init__(self) -> None:
        self.head, self.safe, self.restarts = 5, 3, 0
        self.state = "running"
        self.verifier = "ok"
        self.error: str | None = None

    def ready(self) -> bool:
        return True

    def names(self) -> list[str]:
        return ["alpha"]

    def view(self, names: Sequence[str]) -> list[AppView]:
        return [
            AppView(
                name=name,
                chain_id=1000,
                vm="native",
                rpc_url="http://127.0.0.1:1",
                address="0x" + "11" * 20,
                state=self.state,  # type: ignore[arg-type]
                heads=Heads(unsafe=self.head, safe=self.safe, finalized=None),
                mempool=None,
                tx_per_second=0.5,
                da_backlog_blocks=self.head - self.safe,
                restarts=self.restarts,
                verifier=VerifierView(status=self.verifier),
                last_error=self.error,
            )
            for name in names
        ]

    def pause(self, name: str) -> SequencerView:
        self.state = "paused"
        return SequencerView(name=name, paused=True, head=self.head)

    def resume(self, name: str) -> SequencerView:
        self.state = "running"
        return SequencerView(name=name, paused=False, head=self.head)

    def stop(self, name: str) -> AppView:
        return self.view([name])[0]

    def start(self, name: str) -> AppView:
        return self.view([name])[0]

    def restart(self, name: str) -> AppView:
        self.restarts += 1
        return self.view([name])[0]


def no_metrics(rpc_url: str) -> Metrics:
    return {}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def tokens(tmp_path: Path) -> Tokens:
    return ensure_tokens(tmp_path)


# ---- the ring ----


def test_the_ring_resumes_after_an_id_and_says_when_it_cannot() -> None:
    log = EventLog(size=3)
    assert log.after(0) == [] and log.last_id == 0
    for n in range(5):
        log.append("block", {"name": "a", "number": n})
    assert [e.id for e in log.all()] == [3, 4, 5]
    assert [e.id for e in log.after(2) or []] == [3, 4, 5]
    assert [e.id for e in log.after(4) or []] == [5]
    assert log.after(5) == []
    assert log.after(1) is None  # 2 is gone
    assert log.after(6) is None  # never given: another process's id
    assert log.after(-1) is None


def test_the_snapshot_is_each_apps_newest_sample() -> None:
    log = EventLog()
    log.append("app", {"name": "b", "n": 1})
    log.append("app", {"name": "a", "n": 1})
    log.append("app", {"name": "b", "n": 2})
    assert log.snapshot() == {"apps": [{"name": "a", "n": 1}, {"name": "b", "n": 2}]}
    log.append("removed", {"name": "a"})
    assert log.snapshot() == {"apps": [{"name": "b", "n": 2}]}
    line = log.append("block", {"name": "b"}).encode()
    assert line == 'id: 5\nevent: block\ndata: {"name":"b"}\n\n'


# ---- what changes between samples ----


def sample(**changes_: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "alpha",
        "heads": {"unsafe": 5, "safe": 3, "finalized": None},
        "state": "running",
        "restarts": 0,
        "verifier": {"status": "ok", "message": None},
        "last_error": None,
        "da_backlog_blocks": 2,
        "metrics": {"batches": 1},
    }
    return {**base, **changes_}


def test_changes_name_blocks_batches_verifier_restarts_state_and_errors() -> None:
    before = sample()
    assert changes(None, before) == [] and changes(before, sample()) == []
    now = sample(
        heads={"unsafe": 7, "safe": 3, "finalized": None},
        metrics={"batches": 2},
        verifier={"status": "diverged", "message": "at 6"},
        restarts=1,
        state="paused",
        last_error="boom",
    )
    found = dict(changes(before, now))
    assert found["block"] == {"name": "alpha", "number": 7, "previous": 5}
    assert found["batch"] == {"name": "alpha", "safe": 3, "backlog": 2}
    assert found["verifier"] == {"name": "alpha", "status": "diverged", "message": "at 6"}
    assert found["restart"] == {"name": "alpha", "restarts": 1}
    assert found["state"] == {"name": "alpha", "state": "paused", "was": "running"}
    assert found["error"] == {"name": "alpha", "line": "boom"}


def test_without_metrics_a_batch_is_the_safe_head_moving() -> None:
    before = sample(metrics={})
    moved = sample(metrics={}, heads={"unsafe": 5, "safe": 4, "finalized": None})
    assert [t for t, _ in changes(before, moved)] == ["batch"]
    restarted = sample(metrics={"batches": 0})  # a new process counts from 0: no batch
    assert changes(before | {"metrics": {"batches": 9}}, restarted) == []


METRICS = """\
# TYPE rollup_transactions_sequenced_total counter
rollup_transactions_sequenced_total{app="alpha"} 120.0
# TYPE rollup_da_batches_total counter
rollup_da_batches_total{app="alpha"} 4.0
# TYPE rollup_bus_messages_total counter
rollup_bus_messages_total{app="alpha",state="sent"} 3.0
rollup_bus_messages_total{app="alpha",state="evicted"} 1.0
# TYPE rollup_bus_messages_unacknowledged gauge
rollup_bus_messages_unacknowledged{app="alpha"} 2.0
# TYPE rollup_send_to_durable_seconds histogram
rollup_send_to_durable_seconds_bucket{app="alpha",le="0.01"} {b1}
rollup_send_to_durable_seconds_bucket{app="alpha",le="0.1"} {b2}
rollup_send_to_durable_seconds_bucket{app="alpha",le="+Inf"} {n}
rollup_send_to_durable_seconds_sum{app="alpha"} {s}
rollup_send_to_durable_seconds_count{app="alpha"} {n}
"""


def metrics_text(b1: int, b2: int, n: int, s: float) -> str:
    text = METRICS
    for key, value in (("{b1}", b1), ("{b2}", b2), ("{n}", n), ("{s}", s)):
        text = text.replace(key, str(value))
    return text


def test_node_metrics_become_counters_and_latency_between_scrapes() -> None:
    before = parse_metrics(metrics_text(10, 10, 10, 0.05))
    assert before["transactions"] == 120 and before["batches"] == 4
    assert before["bus"] == {"sent": 3} and before["bus_unacknowledged"] == 2
    now = parse_metrics(metrics_text(10, 109, 110, 5.05))  # 100 more: 99 under 0.1 s
    assert latency_ms(before, now) == {"mean": 50.0, "p99": 100.0}
    assert latency_ms(now, now) is None
    assert parse_metrics("not prometheus {")["bus"] is None


def test_the_sampler_turns_samples_into_events() -> None:
    fleet, log = MovingFleet(), EventLog()
    sampler = Sampler(fleet, log, scrape_node=lambda url: parse_metrics(metrics_text(1, 1, 1, 0)))
    sampler.publish(sampler.sample())
    assert [e.type for e in log.all()] == ["app"]
    first = log.all()[0].data
    assert first["heads"]["unsafe"] == 5 and first["metrics"]["transactions"] == 120
    fleet.head, fleet.state = 6, "paused"
    sampler.publish(sampler.sample())
    assert [e.type for e in log.all()[1:]] == ["block", "state", "app"]
    fleet.names = lambda: []  # type: ignore[method-assign]
    sampler.publish(sampler.sample())
    assert log.all()[-1].type == "removed" and log.snapshot() == {"apps": []}


# ---- the JSON face of /v1/events (in process) ----


def test_json_events_need_a_token_and_resume_after_an_id(tokens: Tokens) -> None:
    app = create_app(MovingFleet(), tokens, scrape_node=no_metrics)
    log: EventLog = app.state.events
    for n in range(3):
        log.append("block", {"name": "alpha", "number": n})
    client = TestClient(app, base_url="http://127.0.0.1")
    assert client.get("/v1/events").status_code == 401
    assert client.get("/v1/events?token=" + tokens.read).status_code in (400, 401)
    page = client.get("/v1/events", headers=bearer(tokens.read)).json()
    assert [e["id"] for e in page["events"]] == [1, 2, 3] and page["last_id"] == 3
    resumed = client.get("/v1/events", headers={**bearer(tokens.read), "Last-Event-ID": "2"})
    assert [e["id"] for e in resumed.json()["events"]] == [3]
    stranger = client.get("/v1/events", headers={**bearer(tokens.read), "Last-Event-ID": "x9"})
    assert stranger.json()["reset"] is True and len(stranger.json()["events"]) == 3
    limited = client.get("/v1/events?limit=1", headers=bearer(tokens.read)).json()
    assert [e["id"] for e in limited["events"]] == [1] and limited["last_id"] == 1


def test_what_the_api_does_is_an_action_event(tokens: Tokens) -> None:
    app = create_app(MovingFleet(), tokens, scrape_node=no_metrics)
    client = TestClient(app, base_url="http://127.0.0.1")
    for path in ("sequencer/pause", "sequencer/resume", "restart"):
        assert client.post(f"/v1/apps/alpha/{path}", headers=bearer(tokens.admin)).is_success
    assert client.post("/v1/apps/alpha/stop", headers=bearer(tokens.read)).status_code == 403
    page = client.get("/v1/events", headers=bearer(tokens.read)).json()
    for event in page["events"]:
        assert abs(event["data"].pop("time_ms") / 1000 - time.time()) < 60
    assert [(e["type"], e["data"]) for e in page["events"]] == [
        ("action", {"name": "alpha", "action": "pause"}),
        ("action", {"name": "alpha", "action": "resume"}),
        ("action", {"name": "alpha", "action": "restart"}),
    ]


# ---- the stream, through a real server ----


class Served:
    def __init__(self, app: FastAPI, url: str) -> None:
        self.app, self.url = app, url

    @property
    def log(self) -> EventLog:
        log: EventLog = self.app.state.events
        return log


@pytest.fixture
def fleet() -> MovingFleet:
    return MovingFleet()


@pytest.fixture
def served(fleet: MovingFleet, tokens: Tokens) -> Iterator[Served]:
    app = create_app(fleet, tokens, sample_interval=0.1, scrape_node=no_metrics)
    app.state.stream_slots = StreamSlots(limit=2, keepalive_seconds=0.3)
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield Served(app, f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        thread.join(10)


Frame = dict[str, Any]


def frames(response: httpx.Response) -> Iterator[Frame]:
    """The stream's events (comments and retry lines skipped), data parsed."""
    frame: Frame = {}
    for line in response.iter_lines():
        if line == "":
            if "event" in frame:
                yield frame
            frame = {}
        elif not line.startswith(":"):
            key, _, value = line.partition(": ")
            frame[key] = json.loads(value) if key == "data" else value


def read_until(
    events: Iterator[Frame], done: Callable[[list[Frame]], bool], timeout: float = 10.0
) -> list[Frame]:
    seen: list[Frame] = []
    deadline = time.monotonic() + timeout
    for frame in events:
        seen.append(frame)
        if done(seen):
            return seen
        assert time.monotonic() < deadline, [f["event"] for f in seen]
    raise AssertionError(f"the stream ended: {[f['event'] for f in seen]}")


def stream(served: Served, token: str, last_id: str | None = None) -> Any:
    headers = {**SSE, **bearer(token)}
    if last_id is not None:
        headers["Last-Event-ID"] = last_id
    client = httpx.Client(base_url=served.url, timeout=10.0, trust_env=False)
    return client, client.stream("GET", "/v1/events", headers=headers)


def has(event: str) -> Callable[[list[Frame]], bool]:
    return lambda seen: any(f["event"] == event for f in seen)


def test_a_stream_starts_with_a_snapshot_then_live_events(
    served: Served, fleet: MovingFleet, tokens: Tokens
) -> None:
    deadline = time.monotonic() + 10
    while not served.log.latest:  # the sampler runs in the app's lifespan
        assert time.monotonic() < deadline
        time.sleep(0.05)
    client, request = stream(served, tokens.read)
    with client, request as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-store"
        events = frames(response)
        (snapshot,) = read_until(events, lambda seen: True)
        assert snapshot["event"] == "snapshot"
        assert snapshot["data"]["apps"][0]["name"] == "alpha"
        fleet.head = 9
        seen = read_until(events, has("block"))
        block = next(f for f in seen if f["event"] == "block")
        assert block["data"] == {"name": "alpha", "number": 9, "previous": 5}
        assert int(block["id"]) > int(snapshot["id"])


def test_last_event_id_resumes_and_a_lost_id_is_a_reset(
    served: Served, fleet: MovingFleet, tokens: Tokens
) -> None:
    fleet.head = 6
    deadline = time.monotonic() + 10
    while not any(e.type == "block" for e in served.log.all()):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    block = next(e for e in served.log.all() if e.type == "block")
    client, request = stream(served, tokens.read, str(block.id - 1))
    with client, request as response:
        (first,) = read_until(frames(response), lambda seen: True)
        assert (first["event"], first["id"], first["data"]) == (
            "block",
            str(block.id),
            dict(block.data),
        )
    client, request = stream(served, tokens.read, str(served.log.last_id + 1000))
    with client, request as response:
        (first,) = read_until(frames(response), lambda seen: True)
        assert first["event"] == "reset" and first["data"]["apps"][0]["name"] == "alpha"


def test_a_stream_needs_the_token_as_a_header(served: Served, tokens: Tokens) -> None:
    with httpx.Client(base_url=served.url, trust_env=False, timeout=5.0) as client:
        assert client.get("/v1/events", headers=SSE).status_code == 401
        response = client.get(f"/v1/events?access_token={tokens.read}", headers=SSE)
        assert response.status_code in (400, 401)  # a token in a URL is never taken


def test_streams_are_bounded_and_a_closed_one_frees_its_slot(
    served: Served, tokens: Tokens
) -> None:
    slots: StreamSlots = served.app.state.stream_slots
    opened = [stream(served, tokens.read) for _ in range(2)]
    responses = [request.__enter__() for _, request in opened]
    try:
        for response in responses:
            assert response.status_code == 200
        with httpx.Client(base_url=served.url, trust_env=False, timeout=5.0) as client:
            refused = client.get("/v1/events", headers={**SSE, **bearer(tokens.read)})
        assert refused.status_code == 503
        assert refused.headers["content-type"] == "application/problem+json"
    finally:
        for client, request in opened:
            request.__exit__(None, None, None)
            client.close()
    deadline = time.monotonic() + 5
    while slots.open:  # the server sees the disconnect at its next write (keep-alive 0.3 s)
        assert time.monotonic() < deadline, slots.open
        time.sleep(0.05)


def test_a_client_that_stops_reading_loses_its_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream_module, "SEND_SECONDS", 0.1)
    released: list[bool] = []
    sent: list[Any] = []

    async def body() -> AsyncIterator[str]:
        while True:
            yield "data: x\n\n"

    async def send(message: Any) -> None:
        sent.append(message)
        if len(sent) > 2:  # the client's window is full: this never completes
            await asyncio.Event().wait()

    async def receive() -> Any:
        await asyncio.Event().wait()

    response = EventStream(body(), lambda: released.append(True))
    scope = {"type": "http", "asgi": {"spec_version": "2.4"}}
    asyncio.run(asyncio.wait_for(response(scope, receive, send), 5))
    assert released == [True] and len(sent) == 3


# ---- the dashboard's files ----


def test_the_dashboard_is_static_with_a_strict_policy(tokens: Tokens) -> None:
    client = TestClient(create_app(MovingFleet(), tokens), base_url="http://127.0.0.1")
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "connect-src 'self'" in policy and "unsafe-inline" not in policy
    for path in ("/static/dashboard.js", "/static/dashboard.css", "/vendor/uPlot.iife.min.js"):
        assert client.get(path).status_code == 200, path
        assert path in page.text
    assert "http" not in page.text.replace("http-equiv", "")  # nothing from another origin
    assert client.get("/static/../app.py").status_code == 404
    assert client.get("/static/index.html").status_code == 404
    assert client.get("/vendor/package.json").status_code == 404
    bad_host = client.get("/", headers={"Host": "evil.example"})
    assert bad_host.status_code == 400


def test_the_docs_load_swagger_ui_from_us(tokens: Tokens) -> None:
    client = TestClient(create_app(MovingFleet(), tokens), base_url="http://127.0.0.1")
    docs = client.get("/docs").text
    assert "/vendor/swagger-ui-bundle.js" in docs and "/vendor/swagger-ui.css" in docs
    assert "cdn" not in docs.lower()
    assert client.get("/vendor/swagger-ui-bundle.js").status_code == 200
    assert client.get("/redoc").status_code == 404


def test_a_missing_npm_package_is_a_clear_503(
    tokens: Tokens, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dashboard, "NODE_MODULES", tmp_path / "node_modules")
    client = TestClient(create_app(MovingFleet(), tokens), base_url="http://127.0.0.1")
    response = client.get("/vendor/uPlot.iife.min.js")
    assert response.status_code == 503
    assert "scripts/setup.sh" in response.json()["detail"]


def test_the_static_files_are_package_data() -> None:
    """A wheel must carry the page: pyproject's package-data globs match every static file."""
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    globs = pyproject["tool"]["setuptools"]["package-data"]["services"]
    services = dashboard.STATIC.parents[1]
    shipped = {path for glob in globs for path in services.glob(glob)}
    assert sorted(p.name for p in dashboard.STATIC.iterdir() if p not in shipped) == []
    assert {"index.html", *dashboard.OWN} <= {p.name for p in shipped}
