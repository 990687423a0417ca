"""GET /v1/apps/{name}/da: the DA poster of one app, from what the devnet and the node expose:
the node's /metrics (its rollup_da_* series: posted and finalized block, backlog, batches,
bytes, failures), the newest failed posting cycle in its log, and, from the L1, the batcher
the BatchInbox names for the app's chain and that batcher's balance (when it runs dry,
posting stops); and whether the operator paused it (the node's admin_status).

POST /v1/apps/{name}/da/pause and /resume (the admin token): the node's admin_pauseDA and
admin_resumeDA. A paused poster posts nothing (no batch, no heartbeat block's commitment)
while blocks go on; resumed, it posts from where the L1 inbox says it stopped. The pause is
the node's, in memory: a restarted node posts again. A node without a poster: 404.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request

from bridge.inbox import BatchInbox
from bridge.l1 import L1Client
from rollup.errors import RollupError
from services.admin.apps import AppName, record_action
from services.admin.auth import require_admin, require_reader
from services.admin.errors import AdminError, NodeUnavailable
from services.admin.explorer import NodesDep
from services.admin.fleet import NODE_REFUSALS, NODE_TIMEOUT, Nodes, call_node, last_line
from services.admin.idempotency import IdempotencyKey, IdempotentRoute
from services.admin.problems import PROBLEM_RESPONSES
from services.admin.query import plain_query
from services.admin.sampler import Metrics, scrape
from services.admin.views import DAControlView, DAPauseView
from services.devnet.state import AppRecord, DARecord, DevnetState
from services.rpcclient import RpcCallError, RpcUnavailable, rpc_call

__all__ = ["control_router", "router"]

log = logging.getLogger(__name__)

POST_FAILED = "DA poster cycle failed"  # da/poster.py's line for a failed cycle
CONTROL_TIMEOUT = 40.0  # the node's pause waits up to 30 s for a posting cycle in flight

router = APIRouter(
    prefix="/v1/apps",
    tags=["da"],
    dependencies=[Depends(require_reader), Depends(plain_query)],
    responses=PROBLEM_RESPONSES,
)
# the poster's pause and resume: a tag of their own (reads and controls are listed apart)
control_router = APIRouter(
    prefix="/v1/apps",
    tags=["da-control"],
    dependencies=[Depends(require_reader), Depends(plain_query)],
    responses=PROBLEM_RESPONSES,
    route_class=IdempotentRoute,
)


@router.get(
    "/{name}/da", summary="The DA poster: posted block, backlog, last error, batcher, paused"
)
def get_da(nodes: NodesDep, name: AppName) -> DAControlView:
    record = nodes.record(name)
    devnet = nodes.devnet()
    da = devnet["da"] if devnet is not None else None
    metrics = scrape(record["rpc_url"]) if not record.get("stopped") else {}
    batcher, balance = _batcher(devnet, da, record)
    return DAControlView(
        name=name,
        paused=_paused(nodes, record),
        backend=da["backend"] if da else None,
        mode=da["mode"] if da else None,
        inbox=da["inbox"] if da else None,
        posted_block=_count(metrics, "da_posted_block"),
        finalized_block=_count(metrics, "da_finalized_block"),
        backlog_blocks=_count(metrics, "da_backlog_blocks"),
        backlog_transactions=_count(metrics, "da_backlog_transactions"),
        batches=_count(metrics, "batches"),
        posted_bytes=_count(metrics, "da_posted_bytes"),
        post_failures=_count(metrics, "da_post_failures"),
        last_error=last_line(Path(record["log"]), lambda line: POST_FAILED in line),
        batcher=batcher,
        batcher_balance_wei=balance,
    )


@control_router.post(
    "/{name}/da/pause",
    summary="Pause the DA poster: it posts nothing (blocks go on) until resumed",
    dependencies=[Depends(require_admin)],
)
def pause_da(
    request: Request, nodes: NodesDep, name: AppName, idempotency_key: IdempotencyKey = None
) -> DAPauseView:
    view = _control(nodes, name, "admin_pauseDA")
    record_action(request, name, "da-pause")
    return view


@control_router.post(
    "/{name}/da/resume",
    summary="Resume the DA poster: it posts from where it stopped",
    dependencies=[Depends(require_admin)],
)
def resume_da(
    request: Request, nodes: NodesDep, name: AppName, idempotency_key: IdempotencyKey = None
) -> DAPauseView:
    view = _control(nodes, name, "admin_resumeDA")
    record_action(request, name, "da-resume")
    return view


def _control(nodes: Nodes, name: str, method: str) -> DAPauseView:
    status = _call_long(nodes.record(name), method, nodes.token)
    return DAPauseView(
        name=name,
        paused=bool(status["paused"]),
        settled=bool(status["settled"]),
        posted_block=status["posted"],
        head=int(status["head"]),
    )


def _call_long(record: AppRecord, method: str, token: str) -> Any:
    """`call_node` with time for a posting cycle in flight to end (a pause waits for it)."""
    try:
        return rpc_call(record["rpc_url"], method, token, timeout=CONTROL_TIMEOUT)
    except RpcCallError as exc:
        refusal = NODE_REFUSALS.get(exc.code, NodeUnavailable)
        raise refusal(exc.reason) from None
    except RpcUnavailable as exc:
        raise NodeUnavailable(f"the node of {record['name']} did not do it: {exc}") from None


def _paused(nodes: Nodes, record: AppRecord) -> bool | None:
    """The node's word on its poster's pause; None when it does not say."""
    if record.get("stopped"):
        return None
    with contextlib.suppress(AdminError):
        status = call_node(record, "admin_status", nodes.token)
        paused = status.get("da_paused") if isinstance(status, dict) else None
        return paused if isinstance(paused, bool) else None
    return None


def _count(metrics: Metrics, key: str) -> int | None:
    value = metrics.get(key)
    return int(value) if isinstance(value, (int, float)) else None


def _batcher(
    devnet: DevnetState | None, da: DARecord | None, record: AppRecord
) -> tuple[str | None, int | None]:
    """The app's batcher as the L1 inbox names it, and its L1 balance; None, None when there
    is no inbox or the L1 does not answer."""
    if devnet is None or da is None:
        return None, None
    with contextlib.suppress(RollupError, OSError, ValueError):
        l1 = L1Client(devnet["l1"]["rpc_url"], timeout=NODE_TIMEOUT)
        batcher = BatchInbox(l1, bytes.fromhex(da["inbox"][2:])).batcher(record["chain_id"])
        return "0x" + batcher.hex(), l1.balance(batcher)
    log.info("admin DA: the L1 did not say the batcher of %s", record["name"])
    return None, None
