"""The admin API's response shapes, typed so that /openapi.json says exactly what comes back."""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "TargetGroup",
    "AppView",
    "BlockSummary",
    "BlockView",
    "DAView",
    "DroppedView",
    "LogLines",
    "PooledTransaction",
    "ReceiptView",
    "TransactionView",
    "EventPage",
    "EventView",
    "Heads",
    "Health",
    "Mempool",
    "NodeState",
    "Page",
    "Problem",
    "Ready",
    "SequencerView",
    "VerifierView",
]

T = TypeVar("T")
NodeState = Literal["running", "paused", "stopped", "unreachable"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Problem(BaseModel):
    """RFC 9457 problem details; validation errors add `errors`."""

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None


class Health(_Model):
    status: Literal["ok"] = "ok"


class Ready(_Model):
    ready: bool
    apps: int = Field(ge=0, description="apps the devnet records")


class Heads(_Model):
    """Block numbers; null when the node does not answer (or has no DA to make them safe)."""

    unsafe: int | None
    safe: int | None
    finalized: int | None


class Mempool(_Model):
    pending: int = Field(ge=0, description="executable now")
    queued: int = Field(ge=0, description="behind a nonce gap")


class VerifierView(_Model):
    status: str
    message: str | None = None


class AppView(_Model):
    name: str
    chain_id: int
    vm: str
    rpc_url: str
    address: str
    state: NodeState
    heads: Heads
    mempool: Mempool | None = Field(description="null when the node does not say")
    tx_per_second: float | None = Field(description="over the last 10 s of blocks")
    da_backlog_blocks: int | None = Field(description="blocks not yet posted to DA")
    restarts: int
    verifier: VerifierView | None
    last_error: str | None = Field(description="the newest ERROR line of the node's log")


class SequencerView(_Model):
    name: str
    paused: bool
    head: int


class Page(_Model, Generic[T]):
    """One page of a list; pass `next_cursor` as `cursor` for the next (null: the last page)."""

    items: list[T]
    next_cursor: str | None


class EventView(_Model):
    """One event of /v1/events (services/admin/events.py)."""

    id: int = Field(ge=1)
    type: str
    data: dict[str, Any]


class EventPage(_Model):
    """The events after Last-Event-ID; `reset`: some were gone, start again from these."""

    events: list[EventView]
    last_id: int = Field(ge=0, description="send it as Last-Event-ID next time")
    reset: bool


class PooledTransaction(_Model):
    """A transaction in the node's pool, not yet in a block."""

    hash: str
    sender: str
    nonce: int = Field(ge=0)
    status: Literal["pending", "queued"] = Field(description="queued: behind a nonce gap")
    to: str | None = Field(description="null: a contract creation")
    value: int = Field(ge=0, description="wei")
    gas: int = Field(ge=0)
    max_fee_per_gas: int = Field(ge=0)
    max_priority_fee_per_gas: int = Field(ge=0)


class DroppedView(_Model):
    """What left the pool: the transaction, then its sender's later nonces."""

    name: str
    dropped: list[str]


class BlockSummary(_Model):
    number: int = Field(ge=0)
    hash: str
    parent_hash: str
    timestamp: int = Field(ge=0, description="seconds")
    gas_used: int = Field(ge=0)
    gas_limit: int = Field(ge=0)
    transaction_count: int = Field(ge=0, description="deposits included")


class BlockView(BlockSummary):
    transactions: list[str] = Field(description="their hashes, in block order")


class ReceiptView(_Model):
    succeeded: bool
    gas_used: int = Field(ge=0)
    logs: int = Field(ge=0, description="how many logs it emitted")
    contract_address: str | None


class TransactionView(_Model):
    """A transaction by hash: in a block (with its receipt) or still pending in the pool."""

    hash: str
    status: Literal["pending", "included"]
    block_number: int | None
    index: int | None = Field(description="its position in the block")
    sender: str
    to: str | None
    nonce: int = Field(ge=0)
    value: int = Field(ge=0)
    gas: int = Field(ge=0)
    type: int = Field(ge=0)
    input: str
    receipt: ReceiptView | None


class DAView(_Model):
    """The DA poster of one app: null where the node or the L1 does not say."""

    name: str
    backend: str | None = Field(description="local, ethereum; null: the devnet posts nothing")
    mode: str | None
    inbox: str | None = Field(description="the BatchInbox on the L1")
    posted_block: int | None = Field(description="the last block committed on the L1 (safe)")
    finalized_block: int | None
    backlog_blocks: int | None = Field(description="durable blocks not yet posted")
    backlog_transactions: int | None
    batches: int | None = Field(description="posted since the node started")
    posted_bytes: int | None
    post_failures: int | None = Field(description="posting cycles that failed (each retried)")
    last_error: str | None = Field(description="the newest failed posting cycle in the log")
    batcher: str | None = Field(description="the app's batcher as the L1 inbox names it")
    batcher_balance_wei: int | None = Field(description="its balance on the L1")


class LogLines(_Model):
    name: str
    lines: list[str] = Field(description="the newest lines of the node's log, oldest first")


class TargetGroup(_Model):
    """One group of Prometheus HTTP service discovery: `host:port` targets and their labels."""

    targets: list[str]
    labels: dict[str, str]
