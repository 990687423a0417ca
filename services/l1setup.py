"""The devnet's L1 side of DA: one BatchInbox, and a funded, registered batcher per app.

    DATA/l1/inbox.json   {"address", "block", "l1_chain_id"}: the inbox is deployed once and
                         reused while the L1 (Anvil's state file, or an external L1) has it
Dev account 0 deploys the inbox and owns it. Each app posts from its own account (a key
derived from the app's name, so it is stable across restarts and never shared: two posters
on one account would race for nonces), funded with 100 ether from account 0 when low.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bridge.inbox import BatchInbox, deploy_inbox
from bridge.l1 import L1Client
from rollup.crypto import SECP256K1_N, keccak
from rollup.genesis import DEV_KEYS

__all__ = ["L1Setup", "batcher_key", "prepare_l1"]

FUNDING = 100 * 10**18
LOW_BALANCE = 10 * 10**18


@dataclass(frozen=True, slots=True)
class L1Setup:
    inbox: bytes
    from_block: int  # the L1 block the inbox was deployed in
    batchers: dict[str, str]  # app name -> its batcher's private key (hex)


def batcher_key(app_name: str) -> str:
    """The devnet batcher key of an app (public knowledge, like Anvil's dev keys)."""
    seed = keccak(b"app-rollup:devnet-batcher:" + app_name.encode())
    return "0x" + (int.from_bytes(seed, "big") % (SECP256K1_N - 1) + 1).to_bytes(32, "big").hex()


def prepare_l1(rpc_url: str, apps: Sequence[tuple[str, int]], state_dir: Path,
               owner_key: str = DEV_KEYS[0]) -> L1Setup:  # fmt: skip
    """Make sure the inbox exists and every app (name, chain id) has its funded batcher."""
    owner = L1Client(rpc_url, owner_key)
    record = state_dir / "inbox.json"
    inbox, block = _existing(record, owner) or _deploy(record, owner)
    keys = {}
    for name, chain_id in apps:
        key = keys[name] = batcher_key(name)
        address = L1Client(rpc_url, key).address
        if owner.balance(address) < LOW_BALANCE:
            owner.send(address, value=FUNDING)
        if inbox.batcher(chain_id) != address:
            inbox.set_batcher(chain_id, address)
    return L1Setup(inbox.address, block, keys)


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
    return BatchInbox(owner, address), block


def _deploy(record: Path, owner: L1Client) -> tuple[BatchInbox, int]:
    inbox, block = deploy_inbox(owner)
    record.parent.mkdir(parents=True, exist_ok=True)
    tmp = record.with_suffix(".tmp")
    body = {"address": "0x" + inbox.address.hex(), "block": block, "l1_chain_id": owner.chain_id}
    tmp.write_text(json.dumps(body), encoding="utf-8")
    os.replace(tmp, record)
    return inbox, block
