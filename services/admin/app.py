"""`create_app`: the admin API of one devnet. /healthz and /readyz answer without a token,
/openapi.json and /docs describe it, `/` is the dashboard (services/admin/dashboard.py);
everything under /v1 needs a bearer token (services/admin/auth.py). While the app runs (its
lifespan), a background task samples the devnet into the event log of /v1/events."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.middleware import Middleware

from services.admin import (
    apps,
    bridge,
    bus,
    da,
    dashboard,
    explorer,
    logs,
    stream,
    targets,
    upgrades,
)
from services.admin.errors import NodeUnavailable
from services.admin.events import EventLog
from services.admin.fleet import Fleet, Nodes
from services.admin.hosts import LOOPBACK_HOSTS, HostCheck
from services.admin.idempotency import IdempotencyStore
from services.admin.models import Health, Ready
from services.admin.problems import PROBLEM_MEDIA_TYPE, PROBLEM_RESPONSES, install_problem_handlers
from services.admin.query import plain_query
from services.admin.sampler import SAMPLE_INTERVAL, Sampler, Scrape, scrape
from services.admin.stream import StreamSlots
from services.admin.tokens import Tokens

__all__ = ["create_app"]

TITLE = "app-rollup admin API"
VERSION = "1"


def create_app(
    fleet: Fleet,
    tokens: Tokens,
    hosts: Sequence[str] = LOOPBACK_HOSTS,
    sample_interval: float = SAMPLE_INTERVAL,
    scrape_node: Scrape = scrape,
    nodes: Nodes | None = None,
) -> FastAPI:
    """The API over `fleet`, accepting `tokens`, for requests whose Host is one of `hosts`;
    the fleet sampled every `sample_interval` seconds (its nodes' metrics by `scrape_node`).
    With `nodes` (the fleet's nodes themselves) it also serves what it reads of a node
    directly: the explorer (pool, blocks, transactions), the DA poster (and its pause), the
    bus's channels and messages, the native upgrades, the bridge and the logs."""
    events = EventLog()
    sampler = Sampler(fleet, events, sample_interval, scrape_node)
    app = FastAPI(
        title=TITLE,
        version=VERSION,
        description="Operate the apps of a devnet: see them, stop, start or restart their nodes, "
        "pause and resume their sequencers and DA posters; their pools, blocks, transactions, "
        "DA, bus, upgrades, bridge and logs.",
        middleware=[Middleware(HostCheck, hosts=hosts)],
        lifespan=lambda _: _sampling(sampler, events),
        docs_url=None,  # dashboard.py serves /docs without a CDN
        redoc_url=None,
    )
    app.state.fleet, app.state.tokens = fleet, tokens
    app.state.idempotency = IdempotencyStore()
    app.state.upgrades = upgrades.UpgradeJournal()
    app.state.events, app.state.stream_slots = events, StreamSlots()
    install_problem_handlers(app)
    app.include_router(apps.router)
    if nodes is not None:
        app.state.nodes = nodes
        routers = (explorer.router, da.router, logs.router, targets.router)
        for router in (*routers, da.control_router, bus.router, upgrades.router, bridge.router):
            app.include_router(router)
    app.include_router(stream.router)
    app.include_router(_probes())
    app.include_router(dashboard.router)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


@contextlib.asynccontextmanager
async def _sampling(sampler: Sampler, events: EventLog) -> AsyncIterator[None]:
    """Run the sampler while the app serves; the event log belongs to this loop."""
    events.bind(asyncio.get_running_loop())
    task = asyncio.create_task(sampler.run(), name="admin-sampler")
    try:
        yield
    finally:
        events.bind(None)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _probes() -> APIRouter:
    """/healthz and /readyz, without a token (a supervisor or an orchestrator asks them)."""
    router = APIRouter(
        tags=["probes"], responses=PROBLEM_RESPONSES, dependencies=[Depends(plain_query)]
    )

    @router.get("/healthz", summary="The service runs")
    def healthz() -> Health:
        return Health()

    @router.get("/readyz", summary="The service can show a devnet (503 while none is recorded)")
    def readyz(request: Request) -> Ready:
        fleet: Fleet = request.app.state.fleet
        if not fleet.ready():
            raise NodeUnavailable("no devnet is recorded in the data dir")
        return Ready(ready=True, apps=len(fleet.names()))

    return router


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema, with the error responses given their media type (problem+json)."""
    if app.openapi_schema is None:
        from fastapi.openapi.utils import get_openapi

        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                _problem_media_type(operation.get("responses", {}))
        app.openapi_schema = schema
    return app.openapi_schema


def _problem_media_type(responses: dict[str, Any]) -> None:
    for status, response in responses.items():
        content = response.get("content", {})
        if status[:1] in ("4", "5") and "application/json" in content:
            content[PROBLEM_MEDIA_TYPE] = content.pop("application/json")
