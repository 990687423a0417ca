"""Run by test_determinism in fresh interpreters: build or replay a chain, print its roots.

python determinism_script.py build APP_DIR DB_URL    -> sequence txs, print block hashes
python determinism_script.py replay APP_DIR DB_URL   -> re-execute stored blocks from
                                                        genesis with apply_block, print
python determinism_script.py reverts                 -> call app methods that fail with
                                                        objects in their errors, print the
                                                        revert data
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rollup.manifest import parse_manifest
from sequencer.harness import LocalChain
from sequencer.store import Store
from vm.commitment import StateTree
from vm.genesis import build_genesis
from vm.native import AppRuntime, NativeVM
from vm.native.loader import load_app_class
from vm.state import DictReader, State
from vm.stf import apply_block


def build(app_dir: Path, url: str) -> list[list[str]]:
    with LocalChain.from_dir(app_dir, url) as chain:
        a = chain.accounts
        for i in range(12):
            chain.transact(a[i % 3], "transfer", a[(i + 1) % 5], 10**15 * (i + 1))
            chain.transfer(a[i % 4], a[9], 1000 + i)
        chain.transact(a[0], "approve", a[1], 10**18)
        chain.transact(a[1], "transferFrom", a[0], a[2], 10**17)
        chain.transact(a[7], "transfer", a[0], 1)  # fails: no tokens
        blocks = [chain.node.block(n) for n in range(chain.node.committed.number + 1)]
        return [
            [str(b.header.number), b.hash.hex(), b.header.state_root.hex()] for b in blocks if b
        ]


def replay(app_dir: Path, url: str) -> list[list[str]]:
    """What a verifier does: genesis from the manifest, then every stored block re-executed."""
    manifest = parse_manifest((app_dir / "rollup.toml").read_text())
    source = (app_dir / manifest.code).read_text()
    runtime = AppRuntime(load_app_class(source), manifest.address, source)
    genesis, changes = build_genesis(manifest, runtime, DictReader())
    base = DictReader({k: after for k, (_, after) in changes.items() if after})
    tree = StateTree(base.data.items())
    vm = NativeVM()
    out = [["0", "", genesis.state_root.hex()]]
    parent = genesis
    store = Store(url)
    for stored in store.iter_blocks(1):
        sealed = apply_block(State(base), parent, stored.block, vm, tree)
        for key, (_, after) in sealed.changes.items():
            if after is None:
                base.data.pop(key, None)
            else:
                base.data[key] = after
        parent = sealed.block.header
        out.append([str(parent.number), sealed.block.hash.hex(), parent.state_root.hex()])
    store.close()
    return out


FAILING = {
    "function": "def f():\n    pass\nraise ValueError(f)",
    "object": "class C:\n    pass\nraise KeyError(C())",
    "several": "raise RuntimeError(1, 'a', [map(abs, [])], b'x')",
    "index": "def f():\n    pass\n[1, 2].index(f)",
    "caught": "def f():\n    pass\ntry:\n    {}[f]\nexcept KeyError as e:\n    revert(str(e.args))",
    "return": "return lambda: 1",
    "text": "x = f'{self.run}'",
}


def reverts() -> list[str]:
    """Revert data of calls whose errors hold objects without a deterministic text."""
    from tests.vm.native.conftest import call, one_method

    return [
        call(one_method(body, returns="uint256" if name == "return" else "None")).reason
        for name, body in FAILING.items()
    ]


if __name__ == "__main__":
    if sys.argv[1] == "reverts":
        print(json.dumps(reverts()))
        raise SystemExit(0)
    mode, app, db = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    print(json.dumps(build(app, db) if mode == "build" else replay(app, db)))
