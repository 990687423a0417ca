"""Compile the bridge's Solidity with the solc that npm installed (`solcjs`, pinned in
package-lock.json); nothing is downloaded at run time."""

from __future__ import annotations

import json
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["CONTRACTS_DIR", "Compiled", "compile_contract", "solcjs_path"]

CONTRACTS_DIR = Path(__file__).resolve().parent / "contracts"
_REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True, slots=True)
class Compiled:
    abi: list[dict[str, Any]]
    bytecode: bytes


def solcjs_path() -> Path:
    path = _REPO / "node_modules" / ".bin" / "solcjs"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run scripts/setup.sh (npm install)")
    return path


def compile_contract(source: Path, contract: str) -> Compiled:
    """ABI and creation bytecode of `contract` in `source` (optimizer on, 200 runs)."""
    with tempfile.TemporaryDirectory(prefix="solc-") as out:
        subprocess.run(
            [str(solcjs_path()), "--bin", "--abi", "--optimize", "--base-path", str(source.parent),
             "-o", out, str(source)],
            check=True, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        stem = next(p for p in Path(out).glob(f"*_{contract}.bin"))
        abi = json.loads(stem.with_suffix(".abi").read_text())
        return Compiled(abi, bytes.fromhex(stem.read_text().strip()))
