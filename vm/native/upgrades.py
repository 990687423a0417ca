"""App code lives in state, so upgrading an app is a state change every verifier replays.

    code    b"\\x02" ++ app  -> NATIVE_CODE_MAGIC ++ keccak(source)   (what eth_getCode shows)
    source  b"\\x03" ++ app  -> the app's Python source
    owner   b"\\x04" ++ app  -> who may upgrade it (set at genesis)
    pending b"\\x06"         -> rlp([[app, height, source], ...]) upgrades not yet active

The owner schedules an upgrade with a transaction to `UPGRADE_ADDRESS` calling
`upgrade(address app, bytes source, uint64 height)`. The new source must pass the loader's
checks then and there, or the transaction fails with the loader's message. At the start of
block `height` (`begin_block`, run by the builder and the verifier alike) the code and source
keys switch; storage stays as it is.
"""

from __future__ import annotations

from rollup import rlp
from rollup.errors import AppLoadError
from rollup.types import Address, BlockEnv
from vm.interface import ExecResult, Message
from vm.native.abi import AbiError, decode_args, encode_values, selector
from vm.native.loader import load_app_class
from vm.native.runtime import native_code
from vm.state import State, code_key

__all__ = [
    "UPGRADE_ADDRESS",
    "UPGRADE_SELECTOR",
    "UPGRADE_GAS",
    "source_key",
    "owner_key",
    "install_app",
    "install_system",
    "request_upgrade",
    "activate_upgrades",
]

UPGRADE_ADDRESS = Address(bytes.fromhex("00000000000000000000000000000000000f0001"))
UPGRADE_SELECTOR = selector("upgrade(address,bytes,uint64)")
UPGRADE_GAS = 200_000
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


def _failure(reason: str) -> ExecResult:
    data = selector("Error(string)") + encode_values(["string"], [reason])
    return ExecResult(False, UPGRADE_GAS, data)


def _pending(state: State) -> list[list[bytes]]:
    raw = state.get(_PENDING)
    if not raw:
        return []
    return [
        [rlp.as_bytes(x) for x in rlp.as_list(item, 3)] for item in rlp.as_list(rlp.decode(raw))
    ]


def request_upgrade(state: State, env: BlockEnv, msg: Message) -> ExecResult:
    """The system call behind UPGRADE_ADDRESS; never raises."""
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
    try:
        load_app_class(source)
    except AppLoadError as exc:
        return _failure(f"new code rejected: {exc}")
    pending = [p for p in _pending(state) if p[0] != app] + [
        [app, rlp.encode_int(height), source_bytes]
    ]
    state.set(_PENDING, rlp.encode(pending))
    return ExecResult(True, UPGRADE_GAS, b"")


def activate_upgrades(state: State, env: BlockEnv) -> list[Address]:
    """Switch the code of every app whose upgrade is due at this block; returns those apps."""
    pending = _pending(state)
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
