"""The port every VM implements: execute one message against a journaled state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from rollup.messages import CrossMessage
from rollup.types import AccessList, Address, BlockEnv, Log
from vm.state import State

__all__ = ["Message", "ExecResult", "ExecutionVM", "WithdrawalRequest"]


@dataclass(frozen=True, slots=True)
class Message:
    sender: Address
    to: Address | None
    value: int
    data: bytes
    gas: int  # gas left for execution, after intrinsic gas
    origin: Address
    gas_price: int
    access_list: AccessList = ()  # EIP-2930: warm from the start; its intrinsic gas is paid


@dataclass(frozen=True, slots=True)
class WithdrawalRequest:
    """A withdrawal as an execution started it (its WithdrawalInitiated log, vm/bridge.py);
    the STF numbers it and adds the chain id. `value` is already at L2_TO_L1_ADDRESS."""

    sender: Address
    target: Address
    value: int
    l1_token: Address
    token_amount: int
    gas_limit: int
    data: bytes


@dataclass(frozen=True, slots=True)
class ExecResult:
    success: bool
    gas_used: int  # execution gas only; the STF adds intrinsic gas
    output: bytes  # return data, or ABI revert data on failure
    logs: tuple[Log, ...] = ()
    contract_address: Address | None = None
    accessed: AccessList = ()  # what execution read and wrote (EVM only: eth_createAccessList)
    # cross-app messages sent through vm/bus.py `send_call` (the native VM), in order; an EVM
    # reports its sends as AppBus logs instead (vm/bus.py `sent_messages` reads both)
    messages: tuple[CrossMessage, ...] = ()


class ExecutionVM(Protocol):
    """Runs a message: moves `value`, runs code, and on failure leaves `state` as it found it."""

    def execute(self, state: State, env: BlockEnv, msg: Message) -> ExecResult: ...

    def call(self, state: State, env: BlockEnv, msg: Message) -> ExecResult:
        """Execute and leave `state` as it was (eth_call, eth_estimateGas)."""
        ...

    def begin_block(self, state: State, env: BlockEnv) -> None:
        """Work due at the start of every block before its transactions (code upgrades)."""
        ...

    def code_at(self, state: State, address: Address) -> bytes: ...

    def install_bridged_token(
        self, state: State, address: Address, storage: dict[bytes, bytes | None]
    ) -> None:
        """Put the bridged token's code at `address` and `storage` (state keys) in state
        (vm/bridge.py `bridged_token_storage`), so that the VM's own view of state has them."""
        ...

    def runs_code(self, state: State, address: Address) -> bool:
        """Whether a message to `address` must go through the VM; the STF moves value to
        anything else itself. The EVM says always: precompiles run without code, and its
        mirror of the state must see every change."""
        ...
