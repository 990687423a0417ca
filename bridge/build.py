"""The bridge's own Solidity (`bridge/contracts/`), compiled with the solc that npm installed
through `bridge/solc.py` (standard JSON, cached); nothing is downloaded at run time.

    NAME.sol        the source
    NAME.abi.json   its ABI, kept beside it for nodes, verifiers and CLIs that have no compiler
                    (`python -m bridge.build` rewrites them; tests/bridge check they are fresh)
`ContractClient` calls one of these contracts through an `L1Client` by its kept ABI and turns
a revert into `L1Rejected("fn: Error(arg, ...)")`. Deployment compiles the source.
"""

from __future__ import annotations

import functools
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from web3 import Web3

from bridge.l1 import L1Client, L1Receipt, L1Rejected
from bridge.solc import compile_files, solcjs_path
from rollup.crypto import keccak

__all__ = [
    "CONTRACTS_DIR",
    "KEPT_ABIS",
    "Compiled",
    "ContractClient",
    "compile_contract",
    "describe_revert",
    "load_abi",
    "solcjs_path",
    "write_abis",
]

CONTRACTS_DIR = Path(__file__).resolve().parent / "contracts"
KEPT_ABIS = ("BatchInbox", "Portal")  # contracts whose ABI is kept beside the source


@dataclass(frozen=True, slots=True)
class Compiled:
    abi: list[dict[str, Any]]
    bytecode: bytes


def compile_contract(source: Path, contract: str) -> Compiled:
    """ABI and creation bytecode of `contract` in `source` (optimizer on, 200 runs). The other
    sources of its directory go in the same request, so what it imports is part of the
    compiler cache's key."""
    others = sorted(p for p in source.parent.glob("*.sol") if p != source)
    compiled = compile_files([source, *others])[contract]
    return Compiled(compiled.abi, compiled.bytecode)


@functools.cache
def load_abi(contract: str) -> list[dict[str, Any]]:
    """The ABI kept beside `contract`'s source."""
    abi: list[dict[str, Any]] = json.loads((CONTRACTS_DIR / f"{contract}.abi.json").read_text())
    return abi


def write_abis() -> list[str]:
    """Rewrite the kept ABIs from a fresh compile; the names of those that changed."""
    changed = []
    for contract in KEPT_ABIS:
        abi = compile_contract(CONTRACTS_DIR / f"{contract}.sol", contract).abi
        path = CONTRACTS_DIR / f"{contract}.abi.json"
        text = json.dumps(abi, indent=1) + "\n"
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            changed.append(contract)
    return changed


@functools.cache
def _errors_of(contract: str) -> dict[bytes, tuple[str, tuple[str, ...]]]:
    """selector -> (name, argument types) of the contract's custom errors."""
    out = {}
    for item in load_abi(contract):
        if item["type"] == "error":
            types = tuple(_abi_type(i) for i in item["inputs"])
            out[keccak(f"{item['name']}({','.join(types)})".encode())[:4]] = (item["name"], types)
    return out


def _abi_type(item: dict[str, Any]) -> str:
    """The canonical type of an ABI input (tuples spelled out, for selectors and decoding)."""
    kind: str = item["type"]
    if kind.startswith("tuple"):
        return f"({','.join(_abi_type(c) for c in item['components'])}){kind[5:]}"
    return kind


def describe_revert(contract: str, data: bytes) -> str:
    """A revert payload of `contract` as `Name(arg, ...)`, or its hex if it is not one."""
    known = _errors_of(contract).get(data[:4])
    if known is None:
        return "0x" + data.hex()
    name, types = known
    try:
        values = Web3().codec.decode(list(types), data[4:])
    except Exception:  # malformed revert data: show it raw
        return f"{name}(0x{data[4:].hex()})"
    return f"{name}({', '.join(_show(v) for v in values)})"


def _show(value: Any) -> str:
    return "0x" + value.hex() if isinstance(value, bytes) else str(value)


class ContractClient:
    """One deployed contract of ours, called and sent to through `l1` by its kept ABI."""

    def __init__(self, l1: L1Client, address: bytes, contract: str) -> None:
        self.l1 = l1
        self.address = address
        self.name = contract
        self.abi = load_abi(contract)
        self.contract = l1.w3.eth.contract(address=Web3.to_checksum_address(address), abi=self.abi)
        self._outputs = {
            i["name"]: [_abi_type(o) for o in i["outputs"]]
            for i in self.abi
            if i["type"] == "function"
        }

    def encode(self, fn: str, *args: Any) -> bytes:
        return bytes.fromhex(self.contract.encode_abi(fn, args=list(args))[2:])

    def call(self, fn: str, *args: Any) -> Any:
        """A view's result: the value, or a tuple of them when it returns several."""
        try:
            raw = self.l1.call(self.address, self.encode(fn, *args))
        except L1Rejected as exc:
            raise self._rejected(fn, exc) from None
        values = Web3().codec.decode(self._outputs[fn], raw)
        return values[0] if len(values) == 1 else tuple(values)

    def send(self, fn: str, *args: Any, value: int = 0) -> L1Receipt:
        """Send a transaction and wait for it; `L1Rejected` naming the error if it reverts."""
        try:
            return self.l1.send(self.address, self.encode(fn, *args), value=value)
        except L1Rejected as exc:
            raise self._rejected(fn, exc) from None

    def _rejected(self, fn: str, exc: L1Rejected) -> L1Rejected:
        if exc.data:
            known = _errors_of(self.name).get(exc.data[:4])
            return L1Rejected(
                f"{fn}: {describe_revert(self.name, exc.data)}",
                exc.data,
                known[0] if known else None,
            )
        return exc


def main() -> int:
    for contract in write_abis():
        print(f"rewrote bridge/contracts/{contract}.abi.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
