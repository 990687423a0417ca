"""Each system contract's runtime shipped in vm/contracts/ is its Solidity source compiled with
bridge.solc's settings (solc 0.8, Cancun, optimizer 200 runs), so the code an EVM chain runs is
the code that was reviewed. After editing a source, regenerate its module with

    .venv/bin/python tests/vm/contracts/test_shipped_runtimes.py
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from bridge.solc import compile_files
from vm.contracts.app_bus import APP_BUS_RUNTIME
from vm.contracts.bridged_token import BRIDGED_TOKEN_RUNTIME
from vm.contracts.l2_to_l1 import L2_TO_L1_RUNTIME

CONTRACTS = Path(__file__).resolve().parents[3] / "vm" / "contracts"

# contract -> (its shipped runtime, the module that ships it, the constant's name)
SHIPPED = {
    "AppBus": (APP_BUS_RUNTIME, "app_bus.py", "APP_BUS_RUNTIME"),
    "L2ToL1": (L2_TO_L1_RUNTIME, "l2_to_l1.py", "L2_TO_L1_RUNTIME"),
    "BridgedToken": (BRIDGED_TOKEN_RUNTIME, "bridged_token.py", "BRIDGED_TOKEN_RUNTIME"),
}


def compiled_runtime(contract: str) -> bytes:
    """The contract's runtime, compiled from its own file alone."""
    return compile_files([CONTRACTS / f"{contract}.sol"])[contract].deployed


@pytest.mark.parametrize("contract", sorted(SHIPPED))
def test_the_shipped_runtime_is_its_source_compiled(contract: str) -> None:
    try:
        fresh = compiled_runtime(contract)
    except FileNotFoundError as exc:  # pragma: no cover - solc comes from npm (setup.sh)
        pytest.skip(f"solc unavailable: {exc}")
    shipped, module, _name = SHIPPED[contract]
    assert fresh == shipped, f"vm/contracts/{module} is stale: run {__doc__.split()[-1]}"


def rewrite_constant(module: Path, name: str, code: bytes) -> None:
    """Replace `NAME = bytes.fromhex(...)` in `module` with `code`, 88 hex digits a line."""
    text = module.read_text(encoding="utf-8")
    start = text.index(f"{name} = bytes.fromhex(")
    end = text.index("\n)\n", start) + 3
    lines = textwrap.wrap(code.hex(), 88)
    body = "".join(f'    "{line}"\n' for line in lines)
    module.write_text(text[:start] + f"{name} = bytes.fromhex(\n{body})\n" + text[end:])


def main() -> int:
    for contract, (shipped, module, name) in SHIPPED.items():
        fresh = compiled_runtime(contract)
        if fresh != shipped:
            rewrite_constant(CONTRACTS / module, name, fresh)
            print(f"rewrote {name} in vm/contracts/{module}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
