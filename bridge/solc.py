"""Solidity through npm's solc (`solcjs --standard-json`), for apps and tests alike.

One run compiles a set of sources for one EVM version (Cancun: what the app EVM runs; solc
0.8.37 defaults to a newer fork whose opcodes revm 8 lacks). Nothing is downloaded.

solcjs takes seconds a run, so outputs are kept in a content-addressed cache
(`.cache/solc/` in the repository, or $ROLLUP_SOLC_CACHE), keyed by the whole request.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rollup.errors import Action, RollupError

__all__ = ["SolcError", "CompiledContract", "compile_sources", "compile_files", "solcjs_path"]

_REPO = Path(__file__).resolve().parent.parent
_CACHE = Path(os.environ.get("ROLLUP_SOLC_CACHE") or _REPO / ".cache" / "solc")


def solcjs_path() -> Path:
    path = _REPO / "node_modules" / ".bin" / "solcjs"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run scripts/setup.sh (npm install)")
    return path


EVM_VERSION = "cancun"


class SolcError(RollupError):
    """The sources do not compile; the message has solc's own errors."""

    action = Action.FIX_INPUT


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
    output = _run_cached(request, base)
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


def _run_cached(request: dict[str, Any], base: Path | None) -> dict[str, Any]:
    text = json.dumps(request, sort_keys=True)
    solc = solcjs_path().resolve()
    key = hashlib.sha256(f"{solc}\n{base}\n{text}".encode()).hexdigest()
    cached = _CACHE / f"{key}.json"
    if cached.is_file():
        result: dict[str, Any] = json.loads(cached.read_text(encoding="utf-8"))
        return result
    command = [str(solc), "--standard-json"]
    if base is not None:
        command += ["--base-path", str(base)]
    # solcjs prints its answer and calls process.exit(), which cuts a piped stdout at 64 KiB
    # (nodejs/node#6456); a file receives all of it.
    with tempfile.TemporaryFile("w+", encoding="utf-8") as answer:
        done = subprocess.run(
            command,
            input=text,
            stdout=answer,
            stderr=subprocess.PIPE,
            text=True,
            timeout=300,
        )
        answer.seek(0)
        stdout = answer.read()
    if "{" not in stdout:
        raise SolcError(f"solcjs failed: {done.stderr.strip() or stdout.strip()}")
    output: dict[str, Any] = json.loads(stdout[stdout.index("{") :])
    if not any(e.get("severity") == "error" for e in output.get("errors", [])):
        _CACHE.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps(output), encoding="utf-8")
        partial.replace(cached)  # atomic: concurrent compilers never see half a file
    return output
