"""App code lives in state, so upgrading an app is a state change every verifier replays.

    code    b"\\x02" ++ app  -> NATIVE_CODE_MAGIC ++ keccak(source)   (what eth_getCode shows)
    source  b"\\x03" ++ app  -> the app's Python source
    owner   b"\\x04" ++ app  -> who may upgrade it (set at genesis)
    pending b"\\x06"         -> rlp([[app, height, source], ...]) upgrades not yet active

The owner schedules an upgrade with a transaction to `UPGRADE_ADDRESS` calling
`upgrade(address app, bytes source, uint64 height)`. The new source must pass the loader's
checks then and there, or the transaction fails with the loader's message; its module code
runs under the transaction's remaining gas (at most loader.LOAD_GAS), which the transaction
pays: UPGRADE_GAS, PREPARE_GAS_PER_BYTE for each byte of source (charged before it is parsed:
preparing costs about 1-3 us a byte; at most MAX_SOURCE_BYTES), and what the load's meter
used. At the start of block `height`
(`begin_block`, run by the builder and the verifier alike) the code and source keys switch;
storage stays as it is.

A simulation (eth_call, eth_estimateGas, eth_createAccessList: `simulate=True`) never runs the
new code and never writes the schedule: it decodes, checks the owner and the height, parses,
checks and compiles the source, and answers what the transaction would: the same failure for
any of those reasons, out of gas, or success with the same gas when `loader.static_load_gas`
knows the load's cost from the text (module code that only declares). When only running the
module code would tell, it answers success with all the gas it was given: an upper bound.
"""

from __future__ import annotations

from rollup import rlp
from rollup.errors import AppLoadError
from rollup.types import Address, BlockEnv
from vm.interface import ExecResult, Message
from vm.native.abi import AbiError, decode_args, encode_values, selector
from vm.native.gas import GasMeter, Halt, OutOfGas
from vm.native.loader import LOAD_GAS, Prepared, prepare, run_module, static_load_gas
from vm.native.runtime import native_code
from vm.state import State, StateReader, code_key

__all__ = [
    "UPGRADE_ADDRESS",
    "UPGRADE_SELECTOR",
    "UPGRADE_GAS",
    "PREPARE_GAS_PER_BYTE",
    "MAX_SOURCE_BYTES",
    "source_key",
    "owner_key",
    "install_app",
    "install_system",
    "request_upgrade",
    "activate_upgrades",
    "pending_upgrades",
]

UPGRADE_ADDRESS = Address(bytes.fromhex("00000000000000000000000000000000000f0001"))
UPGRADE_SELECTOR = selector("upgrade(address,bytes,uint64)")
UPGRADE_GAS = 200_000
PREPARE_GAS_PER_BYTE = 100  # parsing, checking, instrumenting, compiling: ~1-3 us a byte
MAX_SOURCE_BYTES = 128 * 1024
_PENDING = b"\x06"


def source_key(app: bytes) -> bytes:
    return b"\x03" + app


def owner_key(app: bytes) -> bytes:
    return b"\x04" + app


# Code at the system address, so transactions to it are calls, not plain transfers.
SYSTEM_CODE = b"\xfe" + b"rollup-system:upgrade"


def install_system(state: State) -> None:
    state.set(code_key(UPGRADE_ADDRESS), SYSTEM_CODE)


def install_app(state: State, app: Address, source: str, owner: Address) -> None:
    state.set(code_key(app), native_code(source))
    state.set(source_key(app), source.encode())
    state.set(owner_key(app), owner)


def _failure(reason: str, gas: int = UPGRADE_GAS) -> ExecResult:
    data = selector("Error(string)") + encode_values(["string"], [reason])
    return ExecResult(False, gas, data)


def pending_upgrades(state: State | StateReader) -> list[list[bytes]]:
    """The schedule: [app, height, source] of each upgrade not yet active."""
    raw = state.get(_PENDING)
    if not raw:
        return []
    return [
        [rlp.as_bytes(x) for x in rlp.as_list(item, 3)] for item in rlp.as_list(rlp.decode(raw))
    ]


def request_upgrade(
    state: State, env: BlockEnv, msg: Message, simulate: bool = False
) -> ExecResult:
    """The system call behind UPGRADE_ADDRESS; never raises. With `simulate`, nothing of the
    new code runs and the schedule is left as it is (see the module docstring)."""
    if msg.gas < UPGRADE_GAS:
        return ExecResult(False, msg.gas, b"")
    if msg.data[:4] != UPGRADE_SELECTOR or msg.value:
        return _failure("expected upgrade(address,bytes,uint64) without value")
    try:
        app, source_bytes, height = decode_args(["address", "bytes", "uint64"], msg.data[4:])
        source = source_bytes.decode()
    except (AbiError, UnicodeDecodeError) as exc:
        return _failure(f"invalid upgrade request: {exc}")
    if state.get(owner_key(app)) != msg.sender:
        return _failure("only the app's owner may upgrade it")
    if height <= env.number:
        return _failure(f"activation height must be after block {env.number}")
    if len(source_bytes) > MAX_SOURCE_BYTES:
        return _failure(f"new code is larger than {MAX_SOURCE_BYTES} bytes")
    base = UPGRADE_GAS + PREPARE_GAS_PER_BYTE * len(source_bytes)  # paid before any parsing
    if base > msg.gas:
        return ExecResult(False, msg.gas, b"")
    try:
        prepared = prepare(source)
    except AppLoadError as exc:
        return _failure(f"new code rejected: {exc}", base)
    budget = min(msg.gas - base, LOAD_GAS)
    if simulate:
        return _simulated_load(prepared, msg, base, budget)
    loaded = _load(prepared, msg, base, budget)
    if not loaded.success:
        return loaded
    pending = [p for p in pending_upgrades(state) if p[0] != app] + [
        [app, rlp.encode_int(height), source_bytes]
    ]
    state.set(_PENDING, rlp.encode(pending))
    return loaded


def _load(prepared: Prepared, msg: Message, base: int, budget: int) -> ExecResult:
    """Run the new module code under `budget`; success carries the gas the request used."""
    meter: GasMeter | None = None
    try:
        meter = GasMeter(budget)
        run_module(prepared, meter, register=False)
    except OutOfGas:
        return _out_of_gas(msg, base, budget)
    except Halt as exc:
        used = base + (meter.used if meter else 0)
        return _failure(f"new code rejected: module code halted: {exc.reason}", min(used, msg.gas))
    except AppLoadError as exc:
        used = base + (meter.used if meter else 0)
        return _failure(f"new code rejected: {exc}", min(used, msg.gas))
    return ExecResult(True, base + meter.used, b"")


def _simulated_load(prepared: Prepared, msg: Message, base: int, budget: int) -> ExecResult:
    gas = static_load_gas(prepared)
    if gas is None:  # only running the module code would tell: it may need all the gas
        return ExecResult(True, msg.gas, b"")
    if gas > budget:
        return _out_of_gas(msg, base, budget)
    return ExecResult(True, base + gas, b"")


def _out_of_gas(msg: Message, base: int, budget: int) -> ExecResult:
    if budget < LOAD_GAS:  # the transaction's own gas ran out
        return ExecResult(False, msg.gas, b"")
    reason = f"new code rejected: module code needs more than {LOAD_GAS} gas"
    return _failure(reason, base + LOAD_GAS)


def activate_upgrades(state: State, env: BlockEnv) -> list[Address]:
    """Switch the code of every app whose upgrade is due at this block; returns those apps."""
    pending = pending_upgrades(state)
    if not pending:
        return []
    due = [p for p in pending if rlp.decode_int(p[1]) <= env.number]
    if not due:
        return []
    for app, _height, source in due:
        state.set(code_key(app), native_code(source.decode()))
        state.set(source_key(app), source)
    rest = [p for p in pending if p not in due]
    state.set(_PENDING, rlp.encode(rest) if rest else None)  # type: ignore[arg-type]
    state.commit()
    return [Address(p[0]) for p in due]
