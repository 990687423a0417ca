"""Deploy the bridge on an L1: one BatchInbox and one Portal over it, both owned by one key,
and register app chains on the Portal (`rollup l1 deploy`, the devnet's L1 setup).

    deploy_bridge(l1, chains)  -> Deployment(inbox, portal, from_block, owner, l1_chain_id)
    register_chains(portal, chains)   idempotent: a chain registered alike is left alone

The windows (bridge/README.md): `withdrawal_delay` is how long an output root waits before it
pays withdrawals: the time watchers have to see a bad batch and the inbox owner to revert it,
since there are no fault proofs; production 7 days (OP's), devnet a few seconds.
`escape_window` is how long a chain may commit nothing before anyone may exit with a state
proof; at least the delay; production 14 days, devnet a minute.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bridge.inbox import deploy_inbox
from bridge.l1 import L1Client, L1Error
from bridge.portal import Portal, deploy_portal

__all__ = [
    "PRODUCTION_WITHDRAWAL_DELAY",
    "PRODUCTION_ESCAPE_WINDOW",
    "DEVNET_WITHDRAWAL_DELAY",
    "DEVNET_ESCAPE_WINDOW",
    "ChainTerms",
    "Deployment",
    "deploy_bridge",
    "register_chains",
]

log = logging.getLogger(__name__)

PRODUCTION_WITHDRAWAL_DELAY = 7 * 24 * 3600
PRODUCTION_ESCAPE_WINDOW = 14 * 24 * 3600
DEVNET_WITHDRAWAL_DELAY = 5
DEVNET_ESCAPE_WINDOW = 60


@dataclass(frozen=True, slots=True)
class ChainTerms:
    """An app chain as the Portal registers it."""

    chain_id: int
    withdrawal_delay: int = PRODUCTION_WITHDRAWAL_DELAY
    escape_window: int = PRODUCTION_ESCAPE_WINDOW


@dataclass(frozen=True, slots=True)
class Deployment:
    inbox: bytes
    portal: bytes
    from_block: int  # the L1 block of the inbox's deployment: read events from there
    owner: bytes
    l1_chain_id: int

    def as_json(self) -> dict[str, Any]:
        return {
            "inbox": "0x" + self.inbox.hex(),
            "portal": "0x" + self.portal.hex(),
            "from_block": self.from_block,
            "owner": "0x" + self.owner.hex(),
            "l1_chain_id": self.l1_chain_id,
        }


def deploy_bridge(l1: L1Client, chains: Sequence[ChainTerms] = ()) -> Deployment:
    """Deploy a new inbox and Portal owned by `l1`'s key, and register `chains`."""
    inbox, block = deploy_inbox(l1)
    portal, _ = deploy_portal(l1, inbox.address)
    log.info(
        "deployed the BatchInbox at 0x%s and the Portal at 0x%s, owned by 0x%s",
        inbox.address.hex(),
        portal.address.hex(),
        l1.address.hex(),
    )
    register_chains(portal, chains)
    return Deployment(inbox.address, portal.address, block, l1.address, l1.chain_id)


def register_chains(portal: Portal, chains: Sequence[ChainTerms]) -> list[int]:
    """Register each chain not registered yet; the ids registered now. A chain registered
    with other terms raises L1Error: the Portal fixes them once."""
    done = []
    for terms in chains:
        held = portal.chain(terms.chain_id)
        if held.registered:
            if (held.withdrawal_delay, held.escape_window) != (
                terms.withdrawal_delay,
                terms.escape_window,
            ):
                raise L1Error(
                    f"chain {terms.chain_id} is registered on the Portal 0x{portal.address.hex()}"
                    f" with withdrawal delay {held.withdrawal_delay} s and escape window "
                    f"{held.escape_window} s, not {terms.withdrawal_delay} s and "
                    f"{terms.escape_window} s"
                )
            continue
        portal.register_chain(terms.chain_id, terms.withdrawal_delay, terms.escape_window)
        log.info(
            "registered chain %d on the Portal (withdrawal delay %d s, escape window %d s)",
            terms.chain_id,
            terms.withdrawal_delay,
            terms.escape_window,
        )
        done.append(terms.chain_id)
    return done
