"""Running a native app: dispatch ABI calldata to a method, meter it, roll back on failure.

Each call runs on a fresh instance of the app class (nothing an app sets on `self` outlives
the call: state lives in storage), with its meter in the app module's globals and as the
active meter, inside `sandbox.app_limits()` (a recursion limit a fixed allowance above this
entry, whoever the caller is). App code runs one call at a time per process: the meter is
found through module globals and the interpreter's limits are process-wide, so a node
serializes its VM calls (the sequencer's owner thread; simulations run there or in a forked
child). A failure is a result, never an exception: its revert data is the app's, or a reason
whose text is the same on every node (no repr of an object, no memory address).
"""

from __future__ import annotations

import sys
from typing import Any

from rollup.crypto import keccak
from rollup.deposits import L2_TO_L1_ADDRESS
from rollup.errors import AppLoadError
from rollup.messages import BUS_ADDRESS
from rollup.types import Address, BlockEnv
from vm.interface import ExecResult, Message
from vm.native.abi import AbiError, decode_args
from vm.native.gas import (
    ACTIVE,
    DepthExceeded,
    GasMeter,
    Halt,
    NestingTooDeep,
    OutOfGas,
    WriteInView,
    output_gas,
    scrub,
    set_active_meter,
)
from vm.native.sandbox import METER_NAME, app_limits, enter_app_limits, leave_app_limits
from vm.native.sdk import App, CallContext, MethodSpec, Msg, Panic, Revert, encode_checked, revert
from vm.state import State, add_balance, get_balance

__all__ = ["AppRuntime", "NATIVE_CODE_MAGIC", "native_code", "failure_reason"]

# eth_getCode of a native app: INVALID opcode (an EVM that jumps in stops at once), a tag, and
# the hash of the app's source, so wallets see a contract and tools can tell what runs there.
NATIVE_CODE_MAGIC = b"\xfe" + b"rollup-native"
MAX_REASON = 1_024  # characters of a failure reason the runtime writes into revert data
_REASON_GAS = 2_000_000  # what printing an exception's arguments may cost, at most


def native_code(source: str) -> bytes:
    return NATIVE_CODE_MAGIC + keccak(source.encode())


def error_data(reason: str) -> bytes:
    """`Error(string)` revert data, as `revert(reason)` makes it."""
    try:
        revert(reason)
    except Revert as exc:
        return exc.data
    raise AssertionError("unreachable")


def failure_reason(exc: BaseException) -> str:
    """`Name: text` of an exception app code raised, the same on every node: the text of its
    arguments only when they all have a deterministic text form, bounded, addresses removed.
    Call it inside `app_limits()`: printing a deeply nested argument recurses."""
    name = type(exc).__name__
    try:
        text = GasMeter(_REASON_GAS).str_of(exc)
    except (NestingTooDeep, RecursionError):
        text = "<its text is nested too deeply to show>"
    except Halt:
        text = "<its text is too large to show>"
    except Exception as error:  # noqa: BLE001 - no text form, digits limit...
        text = f"<its text cannot be shown: {error}>"
    reason = scrub(f"{name}: {text}" if text else name)
    return reason if len(reason) <= MAX_REASON else reason[: MAX_REASON - 3] + "..."


class AppRuntime:
    """One loaded app at one address."""

    def __init__(self, app_class: type[App], address: Address, source: str) -> None:
        self.app_class, self.address, self.source = app_class, address, source
        self.code = native_code(source)
        # instrumented app code finds its meter here; set before every call
        self.module_globals: dict[str, Any] = vars(sys.modules[app_class.__module__])

    def execute(
        self, state: State, env: BlockEnv, msg: Message, read_only: bool = False
    ) -> ExecResult:
        try:
            meter = GasMeter(msg.gas, read_only)
        except OutOfGas:
            return ExecResult(False, msg.gas, b"")
        ctx = CallContext(
            state, self.address, Msg(msg.sender, msg.value, msg.data, msg.origin), env, meter
        )
        previous, ACTIVE.meter = ACTIVE.meter, meter
        limits = enter_app_limits()
        snapshot = state.snapshot()
        try:
            output = self._dispatch(state, ctx, msg)
            meter.charge(output_gas(len(output)))
            result = ExecResult(
                True, meter.used, output, tuple(ctx.logs), messages=tuple(ctx.messages)
            )
        except OutOfGas:
            result = ExecResult(False, msg.gas, b"")
        except Halt as exc:  # a bound crossed: fails like out of gas, with the reason as data
            result = ExecResult(False, msg.gas, error_data(exc.reason))
        except RecursionError:
            result = ExecResult(False, msg.gas, error_data(DepthExceeded.reason))
        except Revert as exc:
            result = _reverted(meter, msg, exc.data)
        except WriteInView:
            result = _failed(meter, msg, error_data("state change in a view call"))
        except ZeroDivisionError:
            result = _failed(meter, msg, Panic(0x12).data)
        except Exception as exc:  # app bugs fail the call, never the node
            result = _failed(meter, msg, error_data(failure_reason(exc)))
        finally:  # (the failure reasons above are printed while the limits still hold)
            leave_app_limits(limits)
            ACTIVE.meter = previous
        if meter.halted is not None or meter.used > msg.gas:  # app code lost a halt
            halt = meter.halted
            result = ExecResult(False, msg.gas, error_data(halt.reason) if halt else b"")
        if not result.success:
            state.revert(snapshot)
        return result

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

    def _instance(self, ctx: CallContext) -> App:
        app = self.app_class.__new__(self.app_class)
        app._ctx = ctx
        self.module_globals[METER_NAME] = ctx.meter
        return app

    def _invoke(self, spec: MethodSpec, ctx: CallContext, args: tuple[Any, ...]) -> bytes:
        result = spec.function(self._instance(ctx), *args)
        if not spec.return_types:
            return b""
        values = result if len(spec.return_types) > 1 else (result,)
        try:
            if not isinstance(values, (tuple, list)):
                raise TypeError(f"{len(spec.return_types)} values expected")
            return encode_checked(spec.return_types, values)
        except TypeError as exc:
            revert(scrub(f"bad return value from {spec.name}: {exc}"))

    def run_init(
        self, state: State, env: BlockEnv, sender: Address, kwargs: dict[str, Any]
    ) -> None:
        """Genesis: call `init(**kwargs)` with no gas limit that matters. Errors propagate."""
        meter = GasMeter(2**62)
        ctx = CallContext(state, self.address, Msg(sender, 0, b"", sender), env, meter)
        previous = set_active_meter(meter)
        try:
            with app_limits():
                self._instance(ctx).init(**kwargs)
        finally:
            set_active_meter(previous)
        if ctx.messages or any(log.address == L2_TO_L1_ADDRESS for log in ctx.logs):
            raise AppLoadError("init() cannot send cross-app messages or withdraw")


def _failed(meter: GasMeter, msg: Message, data: bytes) -> ExecResult:
    return ExecResult(False, min(meter.used, msg.gas), data)


def _reverted(meter: GasMeter, msg: Message, data: bytes) -> ExecResult:
    """The app's own revert data, priced like return data."""
    used = meter.used + output_gas(len(data))
    return ExecResult(False, used, data) if used <= msg.gas else ExecResult(False, msg.gas, b"")


def _transfer(state: State, sender: bytes, to: bytes, value: int) -> None:
    if get_balance(state, sender) < value:
        revert("insufficient balance for transfer")
    add_balance(state, sender, -value)
    add_balance(state, to, value)
