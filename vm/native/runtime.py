"""Running a native app: dispatch ABI calldata to a method, meter it, roll back on failure."""

from __future__ import annotations

import sys
from typing import Any

from rollup.crypto import keccak
from rollup.errors import AppLoadError
from rollup.messages import BUS_ADDRESS
from rollup.types import Address, BlockEnv
from vm.interface import ExecResult, Message
from vm.native.abi import AbiError, decode_args, encode_values
from vm.native.gas import DepthExceeded, GasMeter, Halt, OutOfGas, WriteInView
from vm.native.sandbox import METER_NAME
from vm.native.sdk import App, CallContext, MethodSpec, Msg, Panic, Revert, revert
from vm.state import State, add_balance, get_balance

__all__ = ["AppRuntime", "NATIVE_CODE_MAGIC", "native_code"]

# eth_getCode of a native app: INVALID opcode (an EVM that jumps in stops at once), a tag, and
# the hash of the app's source, so wallets see a contract and tools can tell what runs there.
NATIVE_CODE_MAGIC = b"\xfe" + b"rollup-native"


def native_code(source: str) -> bytes:
    return NATIVE_CODE_MAGIC + keccak(source.encode())


def _error_data(reason: str) -> bytes:
    try:
        revert(reason)
    except Revert as exc:
        return exc.data
    raise AssertionError("unreachable")


class AppRuntime:
    """One loaded app at one address."""

    def __init__(self, app_class: type[App], address: Address, source: str) -> None:
        self.app_class, self.address, self.source = app_class, address, source
        self.code = native_code(source)
        self.instance = app_class.__new__(app_class)
        # instrumented app code finds its meter here; set before every call
        self.module_globals: dict[str, Any] = vars(sys.modules[app_class.__module__])

    def execute(
        self, state: State, env: BlockEnv, msg: Message, read_only: bool = False
    ) -> ExecResult:
        snapshot = state.snapshot()
        try:
            meter = GasMeter(msg.gas, read_only)
        except OutOfGas:
            return ExecResult(False, msg.gas, b"")
        ctx = CallContext(
            state, self.address, Msg(msg.sender, msg.value, msg.data, msg.origin), env, meter
        )
        try:
            output = self._dispatch(state, ctx, msg)
        except OutOfGas:
            state.revert(snapshot)
            return ExecResult(False, msg.gas, b"")
        except Halt as exc:  # a bound crossed: fails like out of gas, with the reason as data
            state.revert(snapshot)
            return ExecResult(False, msg.gas, _error_data(exc.reason))
        except RecursionError:
            state.revert(snapshot)
            return ExecResult(False, msg.gas, _error_data(DepthExceeded.reason))
        except Revert as exc:
            state.revert(snapshot)
            return ExecResult(False, min(meter.used, msg.gas), exc.data)
        except WriteInView:
            state.revert(snapshot)
            return ExecResult(
                False, min(meter.used, msg.gas), _error_data("state change in a view call")
            )
        except ZeroDivisionError:
            state.revert(snapshot)
            return ExecResult(False, min(meter.used, msg.gas), Panic(0x12).data)
        except Exception as exc:  # app bugs fail the call, never the node
            state.revert(snapshot)
            reason = f"{type(exc).__name__}: {exc}"
            return ExecResult(False, min(meter.used, msg.gas), _error_data(reason))
        return ExecResult(True, meter.used, output, tuple(ctx.logs), messages=tuple(ctx.messages))

    def _dispatch(self, state: State, ctx: CallContext, msg: Message) -> bytes:
        spec = self.app_class.__methods__.get(msg.data[:4]) if len(msg.data) >= 4 else None
        if spec is None:
            revert("no such method" if msg.data else "app does not accept plain transfers")
        if msg.value and spec.mutability != "payable":
            revert(f"{spec.name} is not payable")
        if spec.mutability == "callback" and msg.sender != BUS_ADDRESS:
            revert(f"{spec.name} is a callback: only the message bus calls it")
        if ctx.meter.read_only is False and spec.mutability == "view":
            ctx.meter.read_only = True
        if msg.value:
            _transfer(state, msg.sender, self.address, msg.value)
        try:
            args = decode_args(spec.arg_types, msg.data[4:])
        except AbiError as exc:
            revert(f"invalid arguments: {exc}")
        return self._invoke(spec, ctx, args)

    def _invoke(self, spec: MethodSpec, ctx: CallContext, args: tuple[Any, ...]) -> bytes:
        app = self.instance
        app._ctx = ctx
        self.module_globals[METER_NAME] = ctx.meter
        result = spec.function(app, *args)
        if not spec.return_types:
            return b""
        values = result if len(spec.return_types) > 1 else (result,)
        try:
            return encode_values(spec.return_types, values)
        except (AbiError, TypeError, ValueError) as exc:
            revert(f"bad return value from {spec.name}: {exc}")

    def run_init(
        self, state: State, env: BlockEnv, sender: Address, kwargs: dict[str, Any]
    ) -> None:
        """Genesis: call `init(**kwargs)` with no gas limit that matters. Errors propagate."""
        meter = GasMeter(2**62)
        ctx = CallContext(state, self.address, Msg(sender, 0, b"", sender), env, meter)
        app = self.instance
        app._ctx = ctx
        self.module_globals[METER_NAME] = meter
        app.init(**kwargs)
        if ctx.messages:
            raise AppLoadError("init() cannot send cross-app messages")


def _transfer(state: State, sender: bytes, to: bytes, value: int) -> None:
    if get_balance(state, sender) < value:
        revert("insufficient balance for transfer")
    add_balance(state, sender, -value)
    add_balance(state, to, value)
