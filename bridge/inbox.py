"""`BatchInbox`: the client of bridge/contracts/BatchInbox.sol, the L1 record of DA batches.

It is both ports of da/commitment.py: the poster's `InboxWriter` (next_block, commit) and the
verifier's `InboxReader` (commitments from the `BatchCommitted` events, L1 block numbers).
The ABI is kept beside the source (BatchInbox.abi.json, checked against a fresh compile by
tests/bridge/test_inbox.py), so nodes and verifiers need no compiler; `deploy` compiles.
A log that does not decode as `BatchCommitted` raises `L1Rejected` naming the L1 block and
transaction, and is never skipped silently.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

from web3 import Web3
from web3.exceptions import Web3Exception

from bridge.build import CONTRACTS_DIR, compile_contract
from bridge.l1 import L1Client, L1Rejected
from rollup.crypto import keccak

__all__ = ["INBOX_ABI", "InboxCommitment", "BatchInbox", "inbox_error", "deploy_inbox"]

SOURCE = CONTRACTS_DIR / "BatchInbox.sol"
INBOX_ABI: list[dict[str, Any]] = json.loads((CONTRACTS_DIR / "BatchInbox.abi.json").read_text())
COMMITTED_TOPIC = keccak(b"BatchCommitted(uint64,uint64,uint64,uint64,bytes32,bytes32,bytes)")
LOG_CHUNK = 10_000  # L1 blocks per eth_getLogs query


@dataclass(frozen=True, slots=True)
class InboxCommitment:
    """One `BatchCommitted` event (satisfies da.commitment.CommitmentRecord)."""

    chain_id: int
    index: int
    first_block: int
    last_block: int
    data_hash: bytes
    output_root: bytes
    da_ref: bytes
    l1_block: int
    l1_tx: bytes


@functools.cache
def _error_names() -> dict[bytes, tuple[str, list[str]]]:
    out = {}
    for item in INBOX_ABI:
        if item["type"] == "error":
            types = [i["type"] for i in item["inputs"]]
            out[keccak(f"{item['name']}({','.join(types)})".encode())[:4]] = (item["name"], types)
    return out


def inbox_error(data: bytes) -> str:
    """A revert payload of the inbox as `Name(arg, ...)`, or its hex if it is not one."""
    known = _error_names().get(data[:4])
    if known is None:
        return "0x" + data.hex()
    name, types = known
    try:
        values = Web3().codec.decode(types, data[4:])
    except Exception:  # malformed revert data: show it raw
        return f"{name}(0x{data[4:].hex()})"
    return f"{name}({', '.join(str(v) for v in values)})"


class BatchInbox:
    def __init__(self, l1: L1Client, address: bytes) -> None:
        self.l1 = l1
        self.address = address
        self._contract = l1.w3.eth.contract(address=Web3.to_checksum_address(address),
                                            abi=INBOX_ABI)  # fmt: skip
        self._event = self._contract.events.BatchCommitted()

    # ---- owner ----

    def set_batcher(self, chain_id: int, batcher: bytes) -> None:
        self._send("setBatcher", chain_id, Web3.to_checksum_address(batcher))

    def batcher(self, chain_id: int) -> bytes:
        batcher, _next, _count = self._call("apps", chain_id)
        return bytes.fromhex(batcher[2:])

    # ---- InboxWriter ----

    def next_block(self, chain_id: int) -> int:
        return int(self._call("nextBlock", chain_id))

    def commit(self, chain_id: int, first_block: int, last_block: int, data_hash: bytes,
               output_root: bytes, da_ref: bytes) -> InboxCommitment:  # fmt: skip
        receipt = self._send("commit", chain_id, first_block, last_block, data_hash,
                             output_root, da_ref)  # fmt: skip
        found = [self._decode(log) for log in receipt.logs if _is_commitment(log)]
        if len(found) != 1:
            raise L1Rejected(f"commit 0x{receipt.tx_hash.hex()} emitted {len(found)} events")
        return found[0]

    # ---- InboxReader ----

    def commitments(self, chain_id: int, from_l1_block: int,
                    to_l1_block: int | None = None) -> list[InboxCommitment]:  # fmt: skip
        end = self.l1.block_number() if to_l1_block is None else to_l1_block
        topics = [COMMITTED_TOPIC, chain_id.to_bytes(32, "big")]
        out: list[InboxCommitment] = []
        for start in range(from_l1_block, end + 1, LOG_CHUNK):
            logs = self.l1.logs(self.address, topics, start, min(start + LOG_CHUNK - 1, end))
            out += [self._decode(log) for log in logs]
        out.sort(key=lambda c: (c.l1_block, c.index))
        return out

    def l1_block_number(self, tag: str = "latest") -> int:
        return self.l1.block_number(tag)

    # ---- internals ----

    def _call(self, name: str, *args: Any) -> Any:
        data = self._contract.encode_abi(name, args=list(args))
        raw = self.l1.call(self.address, bytes.fromhex(data[2:]))
        outputs = next(i["outputs"] for i in INBOX_ABI if i.get("name") == name)
        values = Web3().codec.decode([o["type"] for o in outputs], raw)
        return values[0] if len(values) == 1 else values

    def _send(self, name: str, *args: Any) -> Any:
        data = self._contract.encode_abi(name, args=list(args))
        try:
            return self.l1.send(self.address, bytes.fromhex(data[2:]))
        except L1Rejected as exc:
            if exc.data:
                raise L1Rejected(f"{name}: {inbox_error(exc.data)}", exc.data) from None
            raise

    def _decode(self, log: Any) -> InboxCommitment:
        where = f"L1 block {log.get('blockNumber')}, tx {_hex(log.get('transactionHash'))}"
        try:
            event = self._event.process_log(log)
            args = event["args"]
            return InboxCommitment(
                chain_id=int(args["chainId"]), index=int(args["index"]),
                first_block=int(args["firstBlock"]), last_block=int(args["lastBlock"]),
                data_hash=bytes(args["dataHash"]), output_root=bytes(args["outputRoot"]),
                da_ref=bytes(args["daRef"]), l1_block=int(log["blockNumber"]),
                l1_tx=bytes(log["transactionHash"]),
            )  # fmt: skip
        except (Web3Exception, KeyError, TypeError, ValueError) as exc:
            raise L1Rejected(f"malformed BatchCommitted log ({where}): {exc}") from None


def _is_commitment(log: Any) -> bool:
    topics = log.get("topics") or []
    return bool(topics) and bytes(topics[0]) == COMMITTED_TOPIC


def _hex(value: Any) -> str:
    return "0x" + bytes(value).hex() if value is not None else "?"


def deploy_inbox(l1: L1Client) -> tuple[BatchInbox, int]:
    """Compile and deploy a new inbox owned by `l1`'s account; (inbox, L1 block of it)."""
    compiled = compile_contract(SOURCE, "BatchInbox")
    receipt = l1.send(None, compiled.bytecode)
    if receipt.contract_address is None:
        raise L1Rejected("the inbox deployment created no contract")
    return BatchInbox(l1, receipt.contract_address), receipt.block_number
