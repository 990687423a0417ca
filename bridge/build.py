"""The bridge's own Solidity (`bridge/contracts/`), compiled with the solc that npm installed
through `bridge/solc.py` (standard JSON, cached); nothing is downloaded at run time."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bridge.solc import compile_files, solcjs_path

__all__ = ["CONTRACTS_DIR", "Compiled", "compile_contract", "solcjs_path"]

CONTRACTS_DIR = Path(__file__).resolve().parent / "contracts"


@dataclass(frozen=True, slots=True)
class Compiled:
    abi: list[dict[str, Any]]
    bytecode: bytes


def compile_contract(source: Path, contract: str) -> Compiled:
    """ABI and creation bytecode of `contract` in `source` (optimizer on, 200 runs)."""
    compiled = compile_files([source])[contract]
    return Compiled(compiled.abi, compiled.bytecode)
