"""The devnet's L1 side: one BatchInbox and one Portal (the bridge), a funded, registered batcher
per app, and each app chain registered on the Portal.

    DATA/l1/inbox.json          {"address", "block", "l1_chain_id", "portal"}: the inbox and
                                the Portal are deployed once and reused while the L1 has them
                                and the owner key owns them
    DATA/l1/owner.key           the owner of both (deploys them, registers and funds the
                                batchers, registers the chains, may revert bad batches); against
                                an external L1 the operator names a key file of their own
                                instead (`rollup up --l1-key-file`)
    DATA/apps/NAME/batcher.key  each app's batcher: the only key that may commit its batches

Every key is a key file (services/keys.py): 32 random bytes, mode 0600, made on first use,
never derived from anything public and never logged (its address is). On the devnet's own
Anvil, dev account 0 tops up the owner: Anvil funds only its ten dev accounts, and that
transfer is all a dev key does on the L1 (it owns nothing and may commit nothing). The owner
funds each batcher (100 ether when it holds less than 10) and registers it with
`setBatcher`. Each app has its own batcher, so two posters never race for one nonce. Each app
chain is registered on the Portal with its withdrawal delay and escape window (the devnet's
defaults: bridge/deploy.py); the Portal fixes them at registration.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bridge.deploy import DEVNET_ESCAPE_WINDOW, DEVNET_WITHDRAWAL_DELAY, ChainTerms, register_chains
from bridge.inbox import BatchInbox, deploy_inbox
from bridge.l1 import L1Client, L1Rejected
from bridge.portal import Portal, deploy_portal
from services.keys import address_of, load_key, load_or_create_key

__all__ = ["BatcherSpec", "L1Setup", "prepare_l1"]

log = logging.getLogger(__name__)

FUNDING = 100 * 10**18
LOW_BALANCE = 10 * 10**18


@dataclass(frozen=True, slots=True)
class BatcherSpec:
    """An app to register on the inbox, and where its batcher's key file is (made if new)."""

    name: str
    chain_id: int
    key_file: Path
    withdrawal_delay: int = DEVNET_WITHDRAWAL_DELAY  # seconds (the Portal's terms for it)
    escape_window: int = DEVNET_ESCAPE_WINDOW


@dataclass(frozen=True, slots=True)
class L1Setup:
    inbox: bytes
    from_block: int  # the L1 block the inbox was deployed in
    owner: bytes  # the inbox owner's address (it owns the Portal too)
    batchers: dict[str, Path]  # app name -> its batcher's key file
    portal: bytes


def prepare_l1(
    rpc_url: str,
    apps: Sequence[BatcherSpec],
    state_dir: Path,
    owner_key_file: Path | None = None,
    fund_owner_from: str | None = None,
) -> L1Setup:
    """Make sure the inbox exists and every app has its funded, registered batcher.

    `owner_key_file`: the owner's key; None: `state_dir/owner.key`, made at random if new (a
    named file must exist). `fund_owner_from`: a key that tops up the owner when it is low
    (the devnet's Anvil: dev account 0); None: the owner must hold its funds already."""
    if owner_key_file is None:
        owner_key = load_or_create_key(state_dir / "owner.key")
    else:
        owner_key = load_key(owner_key_file)
    owner = L1Client(rpc_url, "0x" + owner_key.hex())
    if fund_owner_from is not None:
        _top_up(L1Client(rpc_url, fund_owner_from), owner.address, (len(apps) + 1) * FUNDING)
    record = state_dir / "inbox.json"
    inbox, block = _existing(record, owner) or _deploy(record, owner)
    portal = _existing_portal(record, owner, inbox) or _deploy_portal(record, owner, inbox)
    for app in apps:
        batcher = bytes.fromhex(address_of(load_or_create_key(app.key_file))[2:])
        _top_up(owner, batcher, FUNDING, LOW_BALANCE)
        if inbox.batcher(app.chain_id) != batcher:
            inbox.set_batcher(app.chain_id, batcher)
            log.info("batcher of %s (chain %d): 0x%s", app.name, app.chain_id, batcher.hex())
    register_chains(
        portal, [ChainTerms(a.chain_id, a.withdrawal_delay, a.escape_window) for a in apps]
    )
    return L1Setup(
        inbox.address, block, owner.address, {a.name: a.key_file for a in apps}, portal.address
    )


def _top_up(funder: L1Client, to: bytes, amount: int, low: int | None = None) -> None:
    """Send `amount` to `to` if it holds less than `low` (default: `amount`)."""
    if funder.balance(to) < (amount if low is None else low):
        funder.send(to, value=amount)


def _existing(record: Path, owner: L1Client) -> tuple[BatchInbox, int] | None:
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
        address, block = bytes.fromhex(data["address"][2:]), int(data["block"])
        if int(data["l1_chain_id"]) != owner.chain_id:
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not owner.code(address):  # the L1 was reset: its state file is gone
        return None
    inbox = BatchInbox(owner, address)
    if inbox.owner() != owner.address:  # another key owns it (an older devnet): start anew
        log.warning(
            "the inbox 0x%s is owned by 0x%s, not by this devnet's owner 0x%s; deploying a new one",
            address.hex(),
            inbox.owner().hex(),
            owner.address.hex(),
        )
        return None
    try:
        inbox.last_commit_time(0)
    except L1Rejected:  # an inbox from before the bridge: it keeps no output roots
        log.warning(
            "the inbox 0x%s keeps no output roots (an older build); deploying a new one",
            address.hex(),
        )
        return None
    return inbox, block


def _deploy(record: Path, owner: L1Client) -> tuple[BatchInbox, int]:
    inbox, block = deploy_inbox(owner)
    log.info(
        "deployed the BatchInbox at 0x%s, owned by 0x%s", inbox.address.hex(), owner.address.hex()
    )
    body = {"address": "0x" + inbox.address.hex(), "block": block, "l1_chain_id": owner.chain_id}
    _write(record, body)
    return inbox, block


def _existing_portal(record: Path, owner: L1Client, inbox: BatchInbox) -> Portal | None:
    """The recorded Portal, if it is over this inbox and the L1 still has it."""
    try:
        address = bytes.fromhex(json.loads(record.read_text(encoding="utf-8"))["portal"][2:])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not owner.code(address):
        return None
    portal = Portal(owner, address)
    return portal if portal.inbox() == inbox.address else None


def _deploy_portal(record: Path, owner: L1Client, inbox: BatchInbox) -> Portal:
    portal, _block = deploy_portal(owner, inbox.address)
    log.info(
        "deployed the Portal at 0x%s over the inbox 0x%s", portal.address.hex(), inbox.address.hex()
    )
    body = json.loads(record.read_text(encoding="utf-8"))
    _write(record, dict(body, portal="0x" + portal.address.hex()))
    return portal


def _write(record: Path, body: dict[str, object]) -> None:
    record.parent.mkdir(parents=True, exist_ok=True)
    tmp = record.with_suffix(".tmp")
    tmp.write_text(json.dumps(body), encoding="utf-8")
    os.replace(tmp, record)
