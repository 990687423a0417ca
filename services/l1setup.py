"""The devnet's L1 side of DA: one BatchInbox, and a funded, registered batcher per app.

    DATA/l1/inbox.json          {"address", "block", "l1_chain_id"}: the inbox is deployed once
                                and reused while the L1 has it and the owner key owns it
    DATA/l1/owner.key           the inbox owner (deploys it, registers and funds the batchers,
                                may revert bad batches); against an external L1 the operator
                                names a key file of their own instead (`rollup up --l1-key-file`)
    DATA/apps/NAME/batcher.key  each app's batcher: the only key that may commit its batches

Every key is a key file (services/keys.py): 32 random bytes, mode 0600, made on first use,
never derived from anything public and never logged (its address is). On the devnet's own
Anvil, dev account 0 tops up the owner: Anvil funds only its ten dev accounts, and that
transfer is all a dev key does on the L1 (it owns nothing and may commit nothing). The owner
funds each batcher (100 ether when it holds less than 10) and registers it with
`setBatcher`. Each app has its own batcher, so two posters never race for one nonce.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bridge.inbox import BatchInbox, deploy_inbox
from bridge.l1 import L1Client
from services.keys import address_of, load_key, load_or_create_key

__all__ = ["BatcherSpec", "L1Setup", "prepare_l1"]

log = logging.getLogger("devnet.l1")

FUNDING = 100 * 10**18
LOW_BALANCE = 10 * 10**18


@dataclass(frozen=True, slots=True)
class BatcherSpec:
    """An app to register on the inbox, and where its batcher's key file is (made if new)."""

    name: str
    chain_id: int
    key_file: Path


@dataclass(frozen=True, slots=True)
class L1Setup:
    inbox: bytes
    from_block: int  # the L1 block the inbox was deployed in
    owner: bytes  # the inbox owner's address
    batchers: dict[str, Path]  # app name -> its batcher's key file


def prepare_l1(rpc_url: str, apps: Sequence[BatcherSpec], state_dir: Path,
               owner_key_file: Path | None = None,
               fund_owner_from: str | None = None) -> L1Setup:  # fmt: skip
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
    for app in apps:
        batcher = bytes.fromhex(address_of(load_or_create_key(app.key_file))[2:])
        _top_up(owner, batcher, FUNDING, LOW_BALANCE)
        if inbox.batcher(app.chain_id) != batcher:
            inbox.set_batcher(app.chain_id, batcher)
            log.info("batcher of %s (chain %d): 0x%s", app.name, app.chain_id, batcher.hex())
    return L1Setup(inbox.address, block, owner.address, {a.name: a.key_file for a in apps})


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
        log.warning("the inbox 0x%s is owned by 0x%s, not by this devnet's owner 0x%s; "
                    "deploying a new one", address.hex(), inbox.owner().hex(),
                    owner.address.hex())  # fmt: skip
        return None
    return inbox, block


def _deploy(record: Path, owner: L1Client) -> tuple[BatchInbox, int]:
    inbox, block = deploy_inbox(owner)
    log.info("deployed the BatchInbox at 0x%s, owned by 0x%s", inbox.address.hex(),
             owner.address.hex())  # fmt: skip
    record.parent.mkdir(parents=True, exist_ok=True)
    tmp = record.with_suffix(".tmp")
    body = {"address": "0x" + inbox.address.hex(), "block": block, "l1_chain_id": owner.chain_id}
    tmp.write_text(json.dumps(body), encoding="utf-8")
    os.replace(tmp, record)
    return inbox, block
