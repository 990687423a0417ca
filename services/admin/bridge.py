"""GET /v1/apps/{name}/bridge: the app's L1 bridge, from its node and the L1.

From the node (rollup_getBridgeStatus): the L1 origin its newest block names, its L1
follower's newest L1 block and whether the L1 answers, the next deposit nonce it executes,
and its newest withdrawals, each `provable` once a posted output root covers it. From the L1
(the Portal devnet.json names): the chain's deposits not executed yet (nonce at or above the
next one: seen on the L1, not yet on the L2), each `confirmed` once its L1 block is at or
below the origin, and whether each withdrawal is proven and finalized on the Portal. Without
an L1 bridge (--da none) the L1 parts are null or empty.
"""

from __future__ import annotations

import contextlib
from typing import Any

from fastapi import APIRouter, Depends

from bridge.l1 import L1Client
from bridge.portal import Portal
from rollup.deposits import Deposit
from rollup.errors import RollupError
from services.admin.apps import AppName
from services.admin.auth import require_reader
from services.admin.explorer import NodesDep
from services.admin.fleet import NODE_TIMEOUT, call_node
from services.admin.problems import PROBLEM_RESPONSES
from services.admin.query import plain_query
from services.admin.views import BridgeView, L1Origin, PendingDeposit, WithdrawalView
from services.devnet.state import AppRecord, DevnetState

__all__ = ["router"]

PENDING_SHOWN = 100  # pending deposits listed at most (the oldest first)

router = APIRouter(
    prefix="/v1/apps",
    tags=["bridge"],
    dependencies=[Depends(require_reader), Depends(plain_query)],
    responses=PROBLEM_RESPONSES,
)


@router.get("/{name}/bridge", summary="The L1 bridge: origin, pending deposits, withdrawals")
def get_bridge(nodes: NodesDep, name: AppName) -> BridgeView:
    record = nodes.record(name)
    status = call_node(record, "rollup_getBridgeStatus")
    portal = _portal(nodes.devnet())
    origin = L1Origin(**status["l1Origin"])
    next_nonce = int(status["nextDepositNonce"])
    deposits = _deposits(portal, nodes.devnet(), record) if portal is not None else None
    pending = [d for d in deposits or [] if d.nonce >= next_nonce][:PENDING_SHOWN]
    return BridgeView(
        name=name,
        chain_id=record["chain_id"],
        portal=None if portal is None else "0x" + portal.address.hex(),
        inbox=_inbox(nodes.devnet()),
        l1_origin=origin,
        l1_tip=status["l1Tip"],
        l1_reachable=status["l1Reachable"],
        next_deposit_nonce=next_nonce,
        deposits_sent=None if deposits is None else len(deposits),
        pending_deposits=[_pending(d, origin.number) for d in pending],
        withdrawals=[_withdrawal(w, portal) for w in status["withdrawals"]],
    )


def _portal(devnet: DevnetState | None) -> Portal | None:
    da = devnet["da"] if devnet is not None else None
    if devnet is None or da is None or not da.get("portal"):
        return None
    with contextlib.suppress(RollupError, OSError, ValueError):
        l1 = L1Client(devnet["l1"]["rpc_url"], timeout=NODE_TIMEOUT)
        return Portal(l1, bytes.fromhex(da["portal"][2:]))
    return None


def _inbox(devnet: DevnetState | None) -> str | None:
    da = devnet["da"] if devnet is not None else None
    return None if da is None else da["inbox"]


def _deposits(
    portal: Portal, devnet: DevnetState | None, record: AppRecord
) -> list[Deposit] | None:
    """The chain's deposits on the Portal, in nonce order; None when the L1 does not say."""
    da = devnet["da"] if devnet is not None else None
    start = da["from_block"] if da is not None else 0
    with contextlib.suppress(RollupError, OSError, ValueError):
        return sorted(portal.deposits(record["chain_id"], start), key=lambda d: d.nonce)
    return None


def _pending(d: Deposit, origin: int) -> PendingDeposit:
    return PendingDeposit(
        nonce=d.nonce,
        l2_transaction="0x" + d.hash.hex(),
        l1_block=d.l1_block,
        sender="0x" + d.sender.hex(),
        to="0x" + d.to.hex(),
        mint=d.mint,
        value=d.value,
        confirmed=d.l1_block <= origin,
    )


def _withdrawal(w: dict[str, Any], portal: Portal | None) -> WithdrawalView:
    proven, finalized = _on_l1(portal, bytes.fromhex(w["hash"][2:]))
    batch = w["batchIndex"]
    return WithdrawalView(
        hash=w["hash"],
        nonce=int(w["nonce"], 16),
        l2_block=int(w["l2Block"], 16),
        sender=w["sender"],
        target=w["target"],
        value=int(w["value"], 16),
        provable=bool(w["provable"]),
        batch_index=None if batch is None else int(batch, 16),
        proven=proven,
        finalized=finalized,
    )


def _on_l1(portal: Portal | None, withdrawal_hash: bytes) -> tuple[bool | None, bool | None]:
    """(proven, finalized) on the Portal; None, None when the L1 does not say."""
    if portal is None:
        return None, None
    with contextlib.suppress(RollupError, OSError, ValueError):
        return portal.proven(withdrawal_hash) is not None, portal.is_finalized(withdrawal_hash)
    return None, None
