"""Fixtures of the bus tests: the ping/pong app pair of `rollup bench bus`, in process."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rollup.manifest import parse_manifest
from rollup.types import BlockHeader
from sequencer.harness import LocalChain
from sequencer.network import LocalNetwork
from vm.commitment import StateTree
from vm.genesis import build_genesis
from vm.native import AppRuntime, NativeVM
from vm.native.loader import load_app_class
from vm.state import DictReader, State
from vm.stf import apply_block

REPO = Path(__file__).resolve().parents[2]
PINGER = REPO / "benchmarks" / "apps" / "pinger"
PONGER = REPO / "benchmarks" / "apps" / "ponger"


@pytest.fixture
def net() -> Iterator[LocalNetwork]:
    with LocalNetwork.from_dirs(PINGER, PONGER) as network:
        yield network


@pytest.fixture
def app_dirs() -> tuple[Path, Path]:
    """(pinger, ponger) app directories."""
    return PINGER, PONGER


@pytest.fixture(name="replay")
def replay_fixture() -> Callable[[LocalChain], list[BlockHeader]]:
    return replay


def replay(chain: LocalChain) -> list[BlockHeader]:
    """What a verifier does: genesis from the manifest, then every committed block of `chain`
    re-executed with apply_block (which checks every header commitment)."""
    app_dir = PINGER if chain.app.address == _address(PINGER) else PONGER
    manifest = parse_manifest((app_dir / "rollup.toml").read_text())
    source = (app_dir / manifest.code).read_text()
    runtime = AppRuntime(load_app_class(source), manifest.address, source)
    genesis, changes = build_genesis(manifest, runtime, DictReader())
    base = DictReader({k: after for k, (_, after) in changes.items() if after})
    tree = StateTree(base.data.items())
    headers = [genesis]
    for number in range(1, chain.node.committed.number + 1):
        block = chain.node.block(number)
        assert block is not None
        sealed = apply_block(State(base), headers[-1], block, NativeVM(), tree)
        for key, (_, after) in sealed.changes.items():
            if after is None:
                base.data.pop(key, None)
            else:
                base.data[key] = after
        headers.append(sealed.block.header)
    return headers


def _address(app_dir: Path) -> bytes:
    return parse_manifest((app_dir / "rollup.toml").read_text()).address
