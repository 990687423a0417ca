"""The Python-native VM and the SDK app authors import.

    from vm.native import App, Map, Value, Event, Error, method, view, payable, address, uint256

An app is a Python class; its typed methods are ABI functions, so wallets call it like a
contract. `NativeVM` executes messages to the apps it hosts and plain value transfers; its
`call` is the simulation entry (eth_call, eth_estimateGas, eth_createAccessList): it never runs
new code, never changes the upgrade schedule, and runs only code whose hash is the code key's
(a state override of `code` cannot make it load anything consensus did not install).
"""

from __future__ import annotations

from rollup.crypto import keccak
from rollup.deposits import L2_TO_L1_ADDRESS
from rollup.errors import AppLoadError
from rollup.types import ZERO_ADDRESS, Address, BlockEnv
from vm.interface import ExecResult, Message
from vm.native.bridged_token import BRIDGED_TOKEN_SOURCE
from vm.native.loader import check_sdk_exports, load_app_class
from vm.native.runtime import MAX_REASON, NATIVE_CODE_MAGIC, AppRuntime, error_data, native_code
from vm.native.sdk import (
    App,
    Error,
    Event,
    Map,
    Panic,
    Revert,
    Value,
    abi_decode,
    app_address,
    callback,
    method,
    payable,
    remote_address,
    require,
    revert,
    view,
)
from vm.native.types import *  # noqa: F403 - the ABI type markers are part of the SDK
from vm.native.types import address, indexed
from vm.native.upgrades import (
    UPGRADE_ADDRESS,
    activate_upgrades,
    install_app,
    request_upgrade,
    source_key,
)
from vm.native.withdrawals import request_withdrawal
from vm.state import State, StateReader, add_balance, code_key, get_balance, get_code

__all__ = [
    "App",
    "AppRuntime",
    "Error",
    "Event",
    "Map",
    "NativeVM",
    "Panic",
    "Revert",
    "Value",
    "abi_decode",
    "address",
    "app_address",
    "callback",
    "indexed",
    "method",
    "native_code",
    "payable",
    "remote_address",
    "require",
    "revert",
    "view",
]


class NativeVM:
    """Executes messages for a chain whose contracts are native apps.

    Which app runs at an address is read from state (its code and source keys), so an
    upgrade, a verifier replaying DA data and the sequencer all load the same code. Loaded
    apps, and loads that failed, are kept per (address, code): only code consensus installed
    gets there, so both stay as small as the chain's history of upgrades.
    """

    def __init__(self, preloaded: list[AppRuntime] | None = None) -> None:
        self._runtimes: dict[tuple[bytes, bytes], AppRuntime] = {
            (r.address, r.code): r for r in preloaded or []
        }
        self._failed: dict[tuple[bytes, bytes], str] = {}

    def runtime_at(self, state: State | StateReader, address: bytes) -> AppRuntime | None:
        """The app at `address`, or None when no native app is there. Raises AppLoadError when
        its code does not load, or when the code key is not the hash of the source installed
        there (only a simulation's state override can make them differ)."""
        code = state.get(code_key(address))
        if not code or not code.startswith(NATIVE_CODE_MAGIC):
            return None
        key = (address, code)
        runtime = self._runtimes.get(key)
        if runtime is not None:
            return runtime
        if key in self._failed:
            raise AppLoadError(self._failed[key])
        raw = state.get(source_key(address)) or b""
        if NATIVE_CODE_MAGIC + keccak(raw) != code:
            raise AppLoadError("the code here is not the hash of the source installed here")
        try:
            source = raw.decode()
            runtime = AppRuntime(load_app_class(source), Address(address), source)
        except (AppLoadError, UnicodeDecodeError) as exc:
            self._failed[key] = f"app code failed to load: {exc}"[:MAX_REASON]
            raise AppLoadError(self._failed[key]) from None
        self._runtimes[key] = runtime
        return runtime

    def begin_block(self, state: State, env: BlockEnv) -> None:
        activate_upgrades(state, env)

    def call(self, state: State, env: BlockEnv, msg: Message) -> ExecResult:
        """A simulation: execute without running new code or scheduling anything, then leave
        state as it was."""
        snapshot = state.snapshot()
        try:
            return self.execute(state, env, msg, simulate=True)
        finally:
            state.revert(snapshot)

    def execute(
        self, state: State, env: BlockEnv, msg: Message, simulate: bool = False
    ) -> ExecResult:
        """Run `msg`; `simulate` is `call`'s: an upgrade request is then only checked."""
        if msg.to is None:
            return ExecResult(False, 0, b"")  # no code deployment on a native chain
        if msg.to == UPGRADE_ADDRESS:
            return request_upgrade(state, env, msg, simulate=simulate)
        if msg.to == L2_TO_L1_ADDRESS:
            return request_withdrawal(state, msg)
        try:
            runtime = self.runtime_at(state, msg.to)
        except AppLoadError as exc:
            return ExecResult(False, msg.gas, error_data(str(exc)[:MAX_REASON]))
        if runtime is not None:
            return runtime.execute(state, env, msg)
        if msg.value:
            if get_balance(state, msg.sender) < msg.value:
                return ExecResult(False, 0, b"")
            add_balance(state, msg.sender, -msg.value)
            add_balance(state, msg.to, msg.value)
        return ExecResult(True, 0, b"")

    def install_bridged_token(
        self, state: State, address: Address, storage: dict[bytes, bytes | None]
    ) -> None:
        """The bridged-token app at `address`; nobody may upgrade it (its owner is zero)."""
        install_app(state, address, BRIDGED_TOKEN_SOURCE, ZERO_ADDRESS)
        for key, value in storage.items():
            state.set(key, value)

    def code_at(self, state: State, address: Address) -> bytes:
        return get_code(state, address)

    def runs_code(self, state: State, address: Address) -> bool:
        return bool(get_code(state, address))


check_sdk_exports()
