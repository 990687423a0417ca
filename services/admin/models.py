"""The admin API's response shapes, typed so that /openapi.json says exactly what comes back."""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AppView",
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
