"""debug_traceTransaction for EVM apps: replay a block up to a transaction, trace it, and shape
revm's EIP-3155 steps as geth's struct logger or (partly) its callTracer.

What revm's tracer gives through pyrevm: pc, op, remaining gas, cost, depth, stack, refund
and an error tag per step, but neither memory nor the return data buffer (always "0x"). So the
struct log is geth's minus `memory` and `storage`; the call tree has every frame's type, from,
to, value, gas, gasUsed and error, while a nested frame's `input` and `output` (they live in
memory) are left out rather than guessed. The top frame is complete.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from rollup.transactions import intrinsic_gas
from rollup.types import Block, Transaction
from vm.evm.machine import EvmVM
from vm.interface import ExecResult, Message
from vm.state import State, get_account, get_code, set_account
from vm.stf import apply_transaction, begin_block, env_of

__all__ = ["Step", "TraceResult", "trace_in_block", "parse_steps", "struct_logs", "call_tree"]

_CALLS = {0xF1: "CALL", 0xF2: "CALLCODE", 0xF4: "DELEGATECALL", 0xFA: "STATICCALL"}
_CREATES = {0xF0: "CREATE", 0xF5: "CREATE2"}
_ENDS_OK = {0x00, 0xF3, 0xFF}  # STOP, RETURN, SELFDESTRUCT
_REVERT = 0xFD
_CODE_DEPOSIT = 200  # gas per byte of deployed code
_ERROR_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)
_HALTS = {
    "OutOfGas": "out of gas",
    "OpcodeNotFound": "invalid opcode",
    "InvalidFEOpcode": "invalid opcode",
    "StackUnderflow": "stack underflow",
    "StackOverflow": "stack overflow",
    "InvalidJump": "invalid jump destination",
    "CallTooDeep": "max call depth exceeded",
    "StateChangeDuringStaticCall": "write protection",
}


@dataclass(frozen=True, slots=True)
class Step:
    pc: int
    op: int
    name: str
    gas: int
    cost: int
    depth: int
    stack: tuple[int, ...]
    return_data: bytes
    error: str | None


@dataclass(frozen=True, slots=True)
class TraceResult:
    tx: Transaction
    result: ExecResult | None  # None: a plain transfer, which runs no code
    gas_used: int
    steps: list[Step]
    state: State  # after the transaction: the code CREATE frames deposited


def parse_steps(text: str) -> list[Step]:
    steps: list[Step] = []
    first_depth: int | None = None
    for line in text.splitlines():
        if not line.startswith("{"):
            continue
        raw = json.loads(line)
        if "pc" not in raw:
            continue  # a summary line
        depth = int(raw["depth"])
        first_depth = depth if first_depth is None else first_depth
        error = raw.get("error")
        steps.append(
            Step(
                pc=int(raw["pc"]),
                op=int(raw["op"]),
                name=str(raw.get("opName", "")),
                gas=int(raw["gas"], 16),
                cost=int(raw["gasCost"], 16),
                depth=depth - first_depth + 1,  # pyrevm starts at 2; geth at 1
                stack=tuple(int(v, 16) for v in raw.get("stack", [])),
                return_data=bytes.fromhex(raw.get("returnData", "0x")[2:]),
                error=None if error in (None, "CallOrCreate") else str(error),
            )
        )
    return steps


def trace_in_block(state: State, block: Block, index: int, vm: EvmVM) -> TraceResult:
    """Replay `block`'s transactions before `index` on `state` (its parent's), then trace it."""
    env = env_of(block.header)
    begin_block(state, env, vm)
    gas = 0
    for tx in block.transactions[:index]:
        gas = apply_transaction(state, env, vm, tx, gas).cumulative_gas_used
    tx = block.transactions[index]
    receipt = block.receipts[index]
    if tx.to is not None and not vm.runs_code(state, tx.to):
        return TraceResult(tx, None, receipt.gas_used, [], state)  # the STF runs no VM for it
    nonce, balance = get_account(state, tx.sender)
    price = tx.effective_gas_price(env.base_fee)
    set_account(state, tx.sender, nonce + 1, balance - tx.gas * price)  # as the STF does
    intrinsic = intrinsic_gas(tx)
    msg = Message(
        tx.sender, tx.to, tx.value, tx.data, tx.gas - intrinsic, tx.sender, price, tx.access_list
    )
    result, text = vm.trace(state, env, msg)
    return TraceResult(tx, result, receipt.gas_used, parse_steps(text), state)


def struct_logs(trace: TraceResult, limit: int = 0) -> dict[str, Any]:
    """geth's default tracer output (memory and storage left out)."""
    steps = trace.steps[:limit] if limit else trace.steps
    logs = []
    for step in steps:
        entry: dict[str, Any] = {
            "pc": step.pc,
            "op": step.name,
            "gas": step.gas,
            "gasCost": step.cost,
            "depth": step.depth,
            "stack": [hex(v) for v in step.stack],
        }
        if step.error:
            entry["error"] = step.error
        logs.append(entry)
    result = trace.result
    return {
        "gas": trace.gas_used,
        "failed": result is not None and not result.success,
        "returnValue": result.output.hex() if result is not None else "",
        "structLogs": logs,
    }


@dataclass
class _Frame:
    kind: str
    sender: bytes
    to: bytes | None
    value: int | None
    gas: int
    start_gas: int = 0
    last: Step | None = None
    calls: list[dict[str, Any]] = field(default_factory=list)


def _hex(value: bytes | None) -> str | None:
    return None if value is None else "0x" + value.hex()


def _frame_json(frame: _Frame, used: int, output: bytes, error: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": frame.kind,
        "from": _hex(frame.sender),
        "to": _hex(frame.to),
        "gas": hex(frame.gas),
        "gasUsed": hex(used),
    }
    if frame.value is not None:
        out["value"] = hex(frame.value)
    if output:
        out["output"] = _hex(output)
    if error:
        out["error"] = error
    if frame.calls:
        out["calls"] = frame.calls
    return out


def _child(step: Step, parent: _Frame) -> _Frame:
    """The frame a CALL-family or CREATE step opens (stack top is the last element)."""
    stack = step.stack
    if step.op in _CREATES:
        return _Frame(_CREATES[step.op], parent.to or b"", None, stack[-1], 0)
    gas, to = stack[-1], stack[-2].to_bytes(32, "big")[12:]
    value = stack[-3] if step.op in (0xF1, 0xF2) else None  # DELEGATECALL/STATICCALL: none
    return _Frame(_CALLS[step.op], parent.to or b"", to, value, gas)


def call_tree(trace: TraceResult) -> dict[str, Any]:
    """geth's callTracer shape; nested frames carry no `input` (see the module docstring)."""
    tx, result = trace.tx, trace.result
    to = tx.to if tx.to is not None else (result.contract_address if result else None)
    root = _Frame(
        "CREATE" if tx.to is None else "CALL", tx.sender, to, tx.value, tx.gas - intrinsic_gas(tx)
    )
    stack: list[_Frame] = [root]
    pending: _Frame | None = None
    call_step = trace.steps[0] if trace.steps else None
    for step in trace.steps:
        if pending is not None:
            if step.depth == len(stack) + 1:  # the call entered code
                pending.gas = pending.start_gas = step.gas
                stack.append(pending)
            else:  # it finished at once: a precompile, an account without code, or a failure
                _close_immediate(stack[-1], pending, call_step, step)
            pending = None
        while step.depth < len(stack):
            _close(stack, step, trace.state)
        frame = stack[-1]
        frame.last = step
        if step.op in _CALLS or step.op in _CREATES:
            pending, call_step = _child(step, frame), step
    failed = result is not None and not result.success
    output = result.output if result is not None else b""
    answer = _frame_json(root, trace.gas_used, output, _error(output) if failed else None)
    answer["input"] = _hex(tx.data)
    if failed and output[:4] == _ERROR_SELECTOR and len(output) >= 68:
        length = int.from_bytes(output[36:68], "big")
        answer["revertReason"] = output[68 : 68 + length].decode(errors="replace")
    return answer


def _error(output: bytes) -> str:
    return "execution reverted" if output else "execution failed"


def _close(stack: list[_Frame], resumed: Step, state: State) -> None:
    """The top frame returned; `resumed` is the caller's next step (success flag on top)."""
    frame = stack.pop()
    last = frame.last
    used = frame.start_gas - (last.gas - last.cost) if last is not None else 0
    ok = bool(resumed.stack[-1]) if resumed.stack else False
    if frame.kind.startswith("CREATE") and ok:
        frame.to = resumed.stack[-1].to_bytes(32, "big")[12:]
        used += _CODE_DEPOSIT * len(get_code(state, frame.to))  # charged after the last step
    error = None
    if not ok:
        error = (
            "execution reverted"
            if last is not None and last.op == _REVERT
            else (
                _HALTS.get(last.error or "", "execution failed")
                if last is not None
                else "execution failed"
            )
        )
    stack[-1].calls.append(_frame_json(frame, max(used, 0), b"", error))


def _close_immediate(parent: _Frame, frame: _Frame, call: Step | None, resumed: Step) -> None:
    ok = bool(resumed.stack[-1]) if resumed.stack else False
    if frame.kind.startswith("CREATE") and ok:
        frame.to = resumed.stack[-1].to_bytes(32, "big")[12:]
    given = _given(frame, call) if call is not None else None
    used = 0
    if given is not None and call is not None:
        frame.gas = given
        # what came back: the caller's gas after the call, less what it had after paying
        used = given - (resumed.gas - (call.gas - call.cost))
    parent.calls.append(_frame_json(frame, max(used, 0), b"", None if ok else "execution failed"))


def _given(frame: _Frame, call: Step) -> int | None:
    """Gas handed to a frame that ran no traced code (a precompile, say): revm's cost of a
    CALL step is its base cost plus the gas it forwards, and the base is one of a few
    values, so find the base that explains the cost. None if nothing does."""
    value = frame.value or 0
    extras = [0]
    if value and frame.kind in ("CALL", "CALLCODE"):
        extras = [9_000, 9_000 + 25_000]
    for access in (100, 2_600):
        for extra in extras:
            base = access + extra
            available = call.gas - base
            forwarded = min(frame.gas, available - available // 64)
            if base + forwarded == call.cost:
                return forwarded + (2_300 if extra else 0)  # the stipend rides with value
    return None
