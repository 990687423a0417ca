"""GET /v1/apps/{name}/da: the DA poster of one app, from what the devnet and the node expose:
the node's /metrics (its rollup_da_* series: posted and finalized block, backlog, batches,
bytes, failures), the newest failed posting cycle in its log, and, from the L1, the batcher
the BatchInbox names for the app's chain and that batcher's balance (when it runs dry,
posting stops).

Pausing the poster is not offered: the poster thread (services/da_node.py) has no switch
the node's admin_ methods could reach.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from fastapi import APIRouter, Depends

from bridge.inbox import BatchInbox
from bridge.l1 import L1Client
from rollup.errors import RollupError
from services.admin.apps import AppName
from services.admin.auth import require_reader
from services.admin.explorer import NodesDep
from services.admin.fleet import NODE_TIMEOUT, last_line
from services.admin.models import DAView
from services.admin.problems import PROBLEM_RESPONSES
from services.admin.query import plain_query
from services.admin.sampler import Metrics, scrape
from services.devnet.state import AppRecord, DARecord, DevnetState

__all__ = ["router"]

log = logging.getLogger(__name__)

POST_FAILED = "DA poster cycle failed"  # da/poster.py's line for a failed cycle

router = APIRouter(
    prefix="/v1/apps",
    tags=["da"],
    dependencies=[Depends(require_reader), Depends(plain_query)],
    responses=PROBLEM_RESPONSES,
)


@router.get("/{name}/da", summary="The DA poster: posted block, backlog, last error, batcher")
def get_da(nodes: NodesDep, name: AppName) -> DAView:
    record = nodes.record(name)
    devnet = nodes.devnet()
    da = devnet["da"] if devnet is not None else None
    metrics = scrape(record["rpc_url"]) if not record.get("stopped") else {}
    batcher, balance = _batcher(devnet, da, record)
    return DAView(
        name=name,
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
