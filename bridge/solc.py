"""Solidity through npm's solc (`solcjs --standard-json`), for apps and tests alike.

One run compiles a set of sources for one EVM version (Cancun: what the app EVM runs; solc
0.8.37 defaults to a newer fork whose opcodes revm 8 lacks). Nothing is downloaded.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bridge.build import solcjs_path

__all__ = ["SolcError", "CompiledContract", "compile_sources", "compile_files"]

EVM_VERSION = "cancun"


class SolcError(Exception):
    """The sources do not compile; the message has solc's own errors."""


@dataclass(frozen=True, slots=True)
class CompiledContract:
    name: str
    abi: list[dict[str, Any]]
    bytecode: bytes
    deployed: bytes


def compile_sources(
    sources: dict[str, str], evm_version: str = EVM_VERSION, base: Path | None = None
) -> dict[str, CompiledContract]:
    """Every contract of `sources` (file name -> text), optimizer on (200 runs)."""
    request = {
        "language": "Solidity",
        "sources": {name: {"content": text} for name, text in sources.items()},
        "settings": {
            "optimizer": {"enabled": True, "runs": 200},
            "evmVersion": evm_version,
            "outputSelection": {
                "*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}
            },
        },
    }
    command = [str(solcjs_path()), "--standard-json"]
    if base is not None:
        command += ["--base-path", str(base)]
    done = subprocess.run(
        command, input=json.dumps(request), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if "{" not in done.stdout:
        raise SolcError(f"solcjs failed: {done.stderr.strip() or done.stdout.strip()}")
    output = json.loads(done.stdout[done.stdout.index("{") :])
    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise SolcError("\n".join(e.get("formattedMessage", e.get("message", "")) for e in errors))
    return {
        name: CompiledContract(
            name,
            c["abi"],
            bytes.fromhex(c["evm"]["bytecode"]["object"]),
            bytes.fromhex(c["evm"]["deployedBytecode"]["object"]),
        )
        for source in output.get("contracts", {}).values()
        for name, c in source.items()
    }


def compile_files(paths: list[Path], evm_version: str = EVM_VERSION) -> dict[str, CompiledContract]:
    """Compile files; imports resolve relative to the first file's directory."""
    sources = {p.name: p.read_text(encoding="utf-8") for p in paths}
    return compile_sources(sources, evm_version, base=paths[0].parent if paths else None)
