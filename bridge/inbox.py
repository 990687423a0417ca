"""`BatchInbox`: the client of bridge/contracts/BatchInbox.sol, the L1 record of DA batches.

It is both ports of da/commitment.py: the poster's `InboxWriter` (next_block, commit) and the
verifier's `InboxReader` (commitments from the `BatchCommitted` events, less those the owner
reverted; the `BatchesReverted` events themselves; L1 block numbers), the owner's side
(set_batcher, revert_batches), and what the bridge reads (`output`: a batch's output root and
commit time, `last_commit_time`). Both events are read with one `eth_getLogs` per range (the
chain id is the first indexed topic of each) and ordered by (L1 block, log index), so a
revert removes exactly the commitments that came before it.
The ABI is kept beside the source (BatchInbox.abi.json, checked against a fresh compile by
tests/bridge/test_inbox.py), so nodes and verifiers need no compiler; `deploy` compiles.
A log that does not decode as the event its topic names raises `L1Rejected` naming the L1
block and transaction, and is never skipped silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from web3 import Web3
from web3.exceptions import Web3Exception

from bridge.build import (
    CONTRACTS_DIR,
    ContractClient,
    compile_contract,
    describe_revert,
    load_abi,
)
from bridge.l1 import L1Client, L1Rejected
from rollup.crypto import keccak

__all__ = [
    "INBOX_ABI",
    "InboxCommitment",
    "InboxRevert",
    "BatchInbox",
    "inbox_error",
    "deploy_inbox",
]

SOURCE = CONTRACTS_DIR / "BatchInbox.sol"
INBOX_ABI: list[dict[str, Any]] = load_abi("BatchInbox")
COMMITTED_TOPIC = keccak(b"BatchCommitted(uint64,uint64,uint64,uint64,bytes32,bytes32,bytes)")
REVERTED_TOPIC = keccak(b"BatchesReverted(uint64,uint64,uint64)")
BATCHER_SET_TOPIC = keccak(b"BatcherSet(uint64,address)")
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
    l1_log_index: int = 0  # the event's place in its L1 block (orders it against reverts)


@dataclass(frozen=True, slots=True)
class InboxRevert:
    """One `BatchesReverted` event (satisfies da.commitment.RevertRecord): the owner removed
    the chain's commitments from `from_index` on; the chain resumes at `next_block`."""

    chain_id: int
    from_index: int
    next_block: int
    l1_block: int
    l1_tx: bytes
    l1_log_index: int = 0


InboxEvent = InboxCommitment | InboxRevert


def inbox_error(data: bytes) -> str:
    """A revert payload of the inbox as `Name(arg, ...)`, or its hex if it is not one."""
    return describe_revert("BatchInbox", data)


class BatchInbox:
    def __init__(self, l1: L1Client, address: bytes) -> None:
        self.l1 = l1
        self.address = address
        self._client = ContractClient(l1, address, "BatchInbox")
        self._committed = self._client.contract.events.BatchCommitted()
        self._reverted = self._client.contract.events.BatchesReverted()

    # ---- owner ----

    def owner(self) -> bytes:
        return bytes.fromhex(self._call("owner")[2:])

    def set_batcher(self, chain_id: int, batcher: bytes) -> None:
        self._send("setBatcher", chain_id, Web3.to_checksum_address(batcher))

    def batcher(self, chain_id: int) -> bytes:
        batcher, _next, _count, _time = self._call("apps", chain_id)
        return bytes.fromhex(batcher[2:])

    def batch_count(self, chain_id: int) -> int:
        """The chain's valid commitments, which also numbers the next one."""
        return int(self._call("batchCount", chain_id))

    def last_commit_time(self, chain_id: int) -> int:
        """L1 timestamp of the chain's latest commitment (0: none yet)."""
        return int(self._call("lastCommitTime", chain_id))

    def output(self, chain_id: int, index: int) -> tuple[bytes, int]:
        """(output root, L1 commit timestamp) of a valid batch; (32 zero bytes, 0) if the
        batch was never committed or was reverted."""
        root, committed_at = self._call("output", chain_id, index)
        return bytes(root), int(committed_at)

    def max_batch_blocks(self) -> int:
        return int(self._call("MAX_BATCH_BLOCKS"))

    def revert_batches(self, chain_id: int, from_index: int) -> InboxRevert:
        """Remove the chain's commitments from batch `from_index` on (owner only)."""
        receipt = self._send("revertBatches", chain_id, from_index)
        found = [self._decode(log) for log in receipt.logs if _topic(log) == REVERTED_TOPIC]
        if len(found) != 1 or not isinstance(found[0], InboxRevert):
            raise L1Rejected(f"revertBatches 0x{receipt.tx_hash.hex()} emitted {len(found)} events")
        return found[0]

    # ---- InboxWriter ----

    def next_block(self, chain_id: int) -> int:
        return int(self._call("nextBlock", chain_id))

    def commit(
        self,
        chain_id: int,
        first_block: int,
        last_block: int,
        data_hash: bytes,
        output_root: bytes,
        da_ref: bytes,
    ) -> InboxCommitment:
        receipt = self._send(
            "commit", chain_id, first_block, last_block, data_hash, output_root, da_ref
        )
        found = [self._decode(log) for log in receipt.logs if _topic(log) == COMMITTED_TOPIC]
        if len(found) != 1 or not isinstance(found[0], InboxCommitment):
            raise L1Rejected(f"commit 0x{receipt.tx_hash.hex()} emitted {len(found)} events")
        return found[0]

    # ---- InboxReader ----

    def commitments(
        self, chain_id: int, from_l1_block: int, to_l1_block: int | None = None
    ) -> list[InboxCommitment]:
        """The chain's commitments included in the L1 range, oldest first, less those a
        `BatchesReverted` later in the range removed. Read from the inbox's deployment on,
        that is the chain's valid set; a reader that consumed earlier ranges learns of
        removals among what it consumed from `reverts`."""
        valid: list[InboxCommitment] = []
        for event in self.events(chain_id, from_l1_block, to_l1_block):
            if isinstance(event, InboxRevert):
                valid = [c for c in valid if c.index < event.from_index]
            else:
                valid.append(event)
        return valid

    def reverts(
        self, chain_id: int, from_l1_block: int, to_l1_block: int | None = None
    ) -> list[InboxRevert]:
        """The owner's `BatchesReverted` of the chain in the L1 range, oldest first."""
        events = self.events(chain_id, from_l1_block, to_l1_block)
        return [e for e in events if isinstance(e, InboxRevert)]

    def events(
        self, chain_id: int, from_l1_block: int, to_l1_block: int | None = None
    ) -> list[InboxEvent]:
        """Commitments and reverts of the chain in the L1 range, in L1 log order."""
        end = self.l1.block_number() if to_l1_block is None else to_l1_block
        topics = [None, chain_id.to_bytes(32, "big")]  # any event of this chain
        out: list[InboxEvent] = []
        for start in range(from_l1_block, end + 1, LOG_CHUNK):
            logs = self.l1.logs(self.address, topics, start, min(start + LOG_CHUNK - 1, end))
            out += [self._decode(log) for log in logs if _topic(log) != BATCHER_SET_TOPIC]
        out.sort(key=lambda e: (e.l1_block, e.l1_log_index))
        return out

    def l1_block_number(self, tag: str = "latest") -> int:
        return self.l1.block_number(tag)

    # ---- internals ----

    def _call(self, name: str, *args: Any) -> Any:
        return self._client.call(name, *args)

    def _send(self, name: str, *args: Any) -> Any:
        return self._client.send(name, *args)

    def _decode(self, log: Any) -> InboxEvent:
        """A `BatchCommitted` or `BatchesReverted` log; L1Rejected for anything else."""
        where = f"L1 block {log.get('blockNumber')}, tx {_hex(log.get('transactionHash'))}"
        topic = _topic(log)
        name = "BatchesReverted" if topic == REVERTED_TOPIC else "BatchCommitted"
        try:
            l1_block, l1_tx = int(log["blockNumber"]), bytes(log["transactionHash"])
            position = int(log.get("logIndex") or 0)
            if topic == REVERTED_TOPIC:
                args = self._reverted.process_log(log)["args"]
                return InboxRevert(
                    int(args["chainId"]),
                    int(args["fromIndex"]),
                    int(args["nextBlock"]),
                    l1_block,
                    l1_tx,
                    position,
                )
            args = self._committed.process_log(log)["args"]
            return InboxCommitment(
                chain_id=int(args["chainId"]),
                index=int(args["index"]),
                first_block=int(args["firstBlock"]),
                last_block=int(args["lastBlock"]),
                data_hash=bytes(args["dataHash"]),
                output_root=bytes(args["outputRoot"]),
                da_ref=bytes(args["daRef"]),
                l1_block=l1_block,
                l1_tx=l1_tx,
                l1_log_index=position,
            )
        except (Web3Exception, KeyError, TypeError, ValueError) as exc:
            raise L1Rejected(f"malformed {name} log ({where}): {exc}") from None


def _topic(log: Any) -> bytes | None:
    topics = log.get("topics") or []
    return bytes(topics[0]) if topics else None


def _hex(value: Any) -> str:
    return "0x" + bytes(value).hex() if value is not None else "?"


def deploy_inbox(l1: L1Client) -> tuple[BatchInbox, int]:
    """Compile and deploy a new inbox owned by `l1`'s account; (inbox, L1 block of it)."""
    compiled = compile_contract(SOURCE, "BatchInbox")
    receipt = l1.send(None, compiled.bytecode)
    if receipt.contract_address is None:
        raise L1Rejected("the inbox deployment created no contract")
    return BatchInbox(l1, receipt.contract_address), receipt.block_number
