"""/v1/apps: the apps of the devnet, one app; its node's stop, start and restart (through the
devnet's supervisor) and its sequencer's pause and resume (through the node). Each change
done is also an `action` event of /v1/events (services/admin/events.py)."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request

from services.admin.auth import require_admin, require_reader
from services.admin.events import EventLog
from services.admin.fleet import Fleet
from services.admin.idempotency import IdempotencyKey, IdempotentRoute
from services.admin.models import AppView, Page, SequencerView
from services.admin.pagination import Cursor, Limit, paginate
from services.admin.problems import PROBLEM_RESPONSES
from services.admin.query import plain_query

__all__ = ["AppName", "record_action", "router"]

router = APIRouter(
    prefix="/v1/apps",
    tags=["apps"],
    dependencies=[Depends(require_reader), Depends(plain_query)],
    responses=PROBLEM_RESPONSES,
    route_class=IdempotentRoute,
)
AppName = Annotated[str, Path(min_length=1, max_length=64, description="the app's name")]


def _fleet(request: Request) -> Fleet:
    fleet: Fleet = request.app.state.fleet
    return fleet


FleetDep = Annotated[Fleet, Depends(_fleet)]


def record_action(request: Request, name: str, action: str) -> None:
    """Tell the event stream what this API just did."""
    events: EventLog = request.app.state.events
    done_ms = int(time.time() * 1000)
    events.append_threadsafe("action", {"name": name, "action": action, "time_ms": done_ms})


@router.get("", summary="List the apps")
def list_apps(fleet: FleetDep, limit: Limit = 50, cursor: Cursor = None) -> Page[AppView]:
    names, next_cursor = paginate(fleet.names(), str, cursor, limit)
    return Page[AppView](items=fleet.view(names), next_cursor=next_cursor)


@router.get("/{name}", summary="One app: heads, pool, rate, DA backlog, verifier")
def get_app(fleet: FleetDep, name: AppName) -> AppView:
    return fleet.view([name])[0]


@router.post(
    "/{name}/sequencer/pause",
    summary="Pause the sequencer: it keeps its pool, refuses new transactions, builds nothing",
    dependencies=[Depends(require_admin)],
)
def pause_sequencer(
    request: Request, fleet: FleetDep, name: AppName, idempotency_key: IdempotencyKey = None
) -> SequencerView:
    view = fleet.pause(name)
    record_action(request, name, "pause")
    return view


@router.post(
    "/{name}/sequencer/resume",
    summary="Resume the sequencer: blocks continue where they stopped",
    dependencies=[Depends(require_admin)],
)
def resume_sequencer(
    request: Request, fleet: FleetDep, name: AppName, idempotency_key: IdempotencyKey = None
) -> SequencerView:
    view = fleet.resume(name)
    record_action(request, name, "resume")
    return view


@router.post(
    "/{name}/stop",
    summary="Stop the app's node (it stays stopped until started)",
    dependencies=[Depends(require_admin)],
)
def stop_app(
    request: Request, fleet: FleetDep, name: AppName, idempotency_key: IdempotencyKey = None
) -> AppView:
    view = fleet.stop(name)
    record_action(request, name, "stop")
    return view


@router.post(
    "/{name}/start",
    summary="Start the app's node again; it resumes from its database",
    dependencies=[Depends(require_admin)],
)
def start_app(
    request: Request, fleet: FleetDep, name: AppName, idempotency_key: IdempotencyKey = None
) -> AppView:
    view = fleet.start(name)
    record_action(request, name, "start")
    return view


@router.post(
    "/{name}/restart",
    summary="Stop and start the app's node",
    dependencies=[Depends(require_admin)],
)
def restart_app(
    request: Request, fleet: FleetDep, name: AppName, idempotency_key: IdempotencyKey = None
) -> AppView:
    view = fleet.restart(name)
    record_action(request, name, "restart")
    return view
