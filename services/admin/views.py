"""Response and request shapes of the DA poster's controls, the bus, the native upgrades and
the bridge (services/admin/da.py, bus.py, upgrades.py, bridge.py), typed so that
/openapi.json says exactly what comes back."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.admin.models import DAView

__all__ = [
    "BridgeView",
    "BusChannel",
    "BusChannels",
    "DAControlView",
    "DAPauseView",
    "L1Origin",
    "MessageBlock",
    "MessageExecution",
    "MessageResult",
    "MessageView",
    "PendingDeposit",
    "UpgradeList",
    "UpgradeRequest",
    "UpgradeScheduled",
    "UpgradeSource",
    "UpgradeView",
    "WithdrawalView",
]

HEX = r"^0x[0-9a-fA-F]*$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---- DA ----


class DAControlView(DAView):
    paused: bool | None = Field(description="the operator paused the poster; null: not known")


class DAPauseView(_Model):
    name: str
    paused: bool
    settled: bool = Field(description="false: a posting cycle in flight had not ended (the last)")
    posted_block: int | None = Field(description="the last block committed on the L1 (safe)")
    head: int = Field(ge=0, description="the newest block: blocks go on while paused")


# ---- the bus ----


class BusChannel(_Model):
    """One peer chain as this app sees it (and, where the peer answers, as the peer does)."""

    peer_chain: int
    peer_app: str | None = Field(description="the devnet's app of that chain, if any")
    sent: int = Field(ge=0, description="messages this app sent the peer")
    acknowledged: int = Field(ge=0, description="of those, the peer reported executing")
    executed: int | None = Field(
        description="of those, the peer's own chain says it executed; null: it did not answer"
    )
    backlog: int = Field(ge=0, description="sent and not yet executed (acknowledged if unknown)")
    inbound_executed: int = Field(ge=0, description="the peer's messages this app executed")


class BusChannels(_Model):
    name: str
    chain_id: int
    inbox: int = Field(ge=0, description="messages received, not yet in a block")
    round_trip_p50_seconds: float | None = Field(
        description="median send-to-acknowledgement time (a histogram bucket's upper bound) "
        "over all channels since the node started; null: nothing measured yet"
    )
    channels: list[BusChannel]


class MessageBlock(_Model):
    chain_id: int
    app: str | None
    block_number: int = Field(ge=0)
    block_hash: str


class MessageExecution(MessageBlock):
    succeeded: bool
    expired: bool = Field(description="consumed unexecuted: it arrived after its expiry")
    gas_used: int = Field(ge=0)
    return_data: str


class MessageResult(_Model):
    """The result message that answers a call (its reply), where each side has it."""

    id: str
    success: bool
    data: str
    sent: MessageBlock | None = Field(description="the call's destination sent it there")
    executed: MessageExecution | None = Field(description="the call's source ran it there")


class MessageView(_Model):
    """A cross-app message by id, from its source chain and its destination chain."""

    id: str
    kind: Literal["call", "result"]
    status: Literal["sent", "delivered", "executed", "failed", "expired"] = Field(
        description="delivered: acknowledged, its execution not seen (the destination does "
        "not answer)"
    )
    src_chain: int
    src_app: str | None
    dst_chain: int
    dst_app: str | None
    nonce: int = Field(ge=0, description="its channel nonce")
    sender: str
    target: str
    value: int | None = Field(description="wei, of a call")
    expiry: int | None = Field(description="seconds, of a call")
    sent: MessageBlock | None
    acknowledged: bool | None = Field(description="the destination reported executing it")
    executed: MessageExecution | None
    result: MessageResult | None


# ---- native upgrades ----


class UpgradeView(_Model):
    id: str = Field(description="the code's keccak hash: GET .../upgrades/{id} has its source")
    code_hash: str
    height: int | None = Field(description="the block it activates at; null: not known")
    state: Literal["active", "scheduled", "replaced", "failed"] = Field(
        description="active: the app's code now; scheduled: activates at `height`; replaced: "
        "another upgrade came before it activated; failed: its transaction failed"
    )
    transaction: str | None = Field(description="the upgrade transaction, if this API sent it")
    error: str | None = Field(default=None, description="why its transaction failed")


class UpgradeSource(UpgradeView):
    source: str


class UpgradeList(_Model):
    name: str
    app: str = Field(description="the app's address")
    owner: str | None = Field(description="who may upgrade it")
    code_hash: str | None = Field(description="its code now")
    owner_key_held: bool = Field(
        description="the devnet holds the owner's key (a dev account): POST signs with it; "
        "otherwise POST takes a raw transaction the owner signed"
    )
    items: list[UpgradeView]


class UpgradeRequest(_Model):
    """Either `source` and `height` (the devnet signs with the owner's dev key), or a
    `raw_transaction` the owner signed: upgrade(app, source, height) to 0x...0f0001."""

    source: str | None = Field(default=None, min_length=1, max_length=128 * 1024)
    height: int | None = Field(default=None, ge=1, le=2**63 - 1)
    raw_transaction: str | None = Field(
        default=None, pattern=HEX, min_length=4, max_length=2 * (192 * 1024)
    )

    @model_validator(mode="after")
    def _one_way(self) -> UpgradeRequest:
        signed = self.raw_transaction is not None
        if signed == (self.source is not None or self.height is not None):
            raise ValueError("give either source and height, or raw_transaction")
        if not signed and (self.source is None or self.height is None):
            raise ValueError("source and height go together")
        return self


class UpgradeScheduled(_Model):
    name: str
    id: str
    code_hash: str
    height: int
    transaction: str
    block_number: int = Field(ge=0, description="where the upgrade transaction is")
    signed_by: Literal["devnet", "caller"] = Field(
        description="devnet: the owner's dev key the devnet holds; caller: the raw transaction"
    )


# ---- the bridge ----


class L1Origin(_Model):
    number: int = Field(ge=0)
    hash: str


class PendingDeposit(_Model):
    """A deposit the L1 Portal has and the app chain has not executed yet."""

    nonce: int = Field(ge=0, description="the chain's deposit counter in the Portal")
    l2_transaction: str = Field(description="the deposit transaction's hash it will have")
    l1_block: int = Field(ge=0)
    sender: str
    to: str
    mint: int = Field(ge=0, description="wei")
    value: int = Field(ge=0)
    confirmed: bool = Field(description="its L1 block is at or below the chain's L1 origin")


class WithdrawalView(_Model):
    hash: str
    nonce: int = Field(ge=0)
    l2_block: int = Field(ge=0)
    sender: str
    target: str
    value: int = Field(ge=0)
    provable: bool = Field(description="a posted output root covers it")
    batch_index: int | None
    proven: bool | None = Field(description="proven on the Portal; null: the L1 did not say")
    finalized: bool | None = Field(description="paid out on the L1; null: the L1 did not say")


class BridgeView(_Model):
    name: str
    chain_id: int
    portal: str | None = Field(description="the Portal on the L1; null: the devnet has none")
    inbox: str | None
    l1_origin: L1Origin = Field(description="the L1 block the newest block names")
    l1_tip: int | None = Field(description="the newest L1 block the node's follower read")
    l1_reachable: bool | None
    next_deposit_nonce: int = Field(ge=0, description="the deposit the chain executes next")
    deposits_sent: int | None = Field(description="the chain's deposits on the Portal")
    pending_deposits: list[PendingDeposit]
    withdrawals: list[WithdrawalView] = Field(description="the newest, newest first")
