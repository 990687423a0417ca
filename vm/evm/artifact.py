"""A compiled Solidity contract as an EVM app ships it: `build/NAME.json`, Hardhat's shape.

    {"contractName": "Token", "abi": [...], "bytecode": "0x...", "deployedBytecode": "0x...",
     "sourceHash": "0x..."}

`sourceHash` is keccak of the sources it was built from, so a stale build is noticed.
Compiling is the services layer's job (npm solc); this module only reads and writes the data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from eth_abi import encode
from eth_abi.exceptions import EncodingError

from rollup.errors import ManifestError

__all__ = ["Artifact", "parse_artifact", "constructor_calldata"]


@dataclass(frozen=True, slots=True)
class Artifact:
    name: str
    abi: list[dict[str, Any]]
    bytecode: bytes  # creation code, without constructor arguments
    deployed: bytes
    source_hash: bytes

    def to_json(self) -> str:
        return json.dumps(
            {
                "contractName": self.name,
                "abi": self.abi,
                "bytecode": "0x" + self.bytecode.hex(),
                "deployedBytecode": "0x" + self.deployed.hex(),
                "sourceHash": "0x" + self.source_hash.hex(),
            },
            indent=1,
        )


def _hex(value: Any, where: str) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise ManifestError(f"artifact {where}: expected 0x-prefixed hex")
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        raise ManifestError(f"artifact {where}: not hex") from None


def parse_artifact(text: str) -> Artifact:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ManifestError(f"artifact is not JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("abi"), list):
        raise ManifestError("artifact: expected an object with an 'abi' list")
    name = data.get("contractName")
    if not isinstance(name, str):
        raise ManifestError("artifact: contractName missing")
    return Artifact(
        name,
        data["abi"],
        _hex(data.get("bytecode"), "bytecode"),
        _hex(data.get("deployedBytecode"), "deployedBytecode"),
        _hex(data.get("sourceHash", "0x"), "sourceHash"),
    )


def constructor_calldata(artifact: Artifact, args: dict[str, Any]) -> bytes:
    """Creation code followed by the constructor's arguments, taken from `args` by name."""
    inputs: list[dict[str, Any]] = next(
        (item.get("inputs", []) for item in artifact.abi if item.get("type") == "constructor"), []
    )
    names = [item["name"] for item in inputs]
    missing = [n for n in names if n not in args]
    extra = sorted(set(args) - set(names))
    if missing or extra:
        raise ManifestError(
            f"[app.init] must give the constructor of {artifact.name} exactly {names}; "
            f"missing {missing}, unknown {extra}"
        )
    types = [item["type"] for item in inputs]
    values = [_abi_value(t, args[n]) for t, n in zip(types, names, strict=True)]
    try:
        return artifact.bytecode + encode(types, values)
    except (EncodingError, TypeError, ValueError, OverflowError) as exc:
        raise ManifestError(f"[app.init] does not fit the constructor {types}: {exc}") from None


def _abi_value(abi_type: str, value: Any) -> Any:
    """TOML gives addresses and bytes as hex strings; eth_abi wants bytes for bytesN."""
    if abi_type.startswith("bytes") and isinstance(value, str) and value.startswith("0x"):
        return bytes.fromhex(value[2:])
    return value
