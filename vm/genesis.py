"""Block 0 of an app chain: dev balances, the app's code and its `init()`."""

from __future__ import annotations

from rollup.bloom import EMPTY_BLOOM
from rollup.crypto import EMPTY_KECCAK
from rollup.genesis import DEV_ADDRESSES
from rollup.manifest import Manifest
from rollup.types import ZERO_ADDRESS, ZERO_HASH, BlockEnv, BlockHeader, Hash32
from vm.commitment import StateTree
from vm.native.runtime import AppRuntime
from vm.native.upgrades import install_app, install_system
from vm.state import State, StateReader, set_account

__all__ = ["build_genesis"]


def build_genesis(
    manifest: Manifest, runtime: AppRuntime | None, base: StateReader
) -> tuple[BlockHeader, dict[bytes, tuple[bytes | None, bytes | None]]]:
    """The genesis header and the state it starts with (applied over an empty `base`)."""
    state = State(base)
    if manifest.dev_accounts:
        for address in DEV_ADDRESSES:
            set_account(state, address, 0, manifest.dev_balance)
    env = BlockEnv(0, 0, ZERO_ADDRESS, manifest.base_fee, manifest.gas_limit, manifest.chain_id)
    if runtime is not None:
        install_system(state)
        owner = DEV_ADDRESSES[manifest.owner_index]
        install_app(state, runtime.address, runtime.source, owner)
        runtime.run_init(state, env, owner, dict(manifest.init_args))
    state.commit()
    changes = state.changes()
    header = BlockHeader(
        number=0,
        parent_hash=ZERO_HASH,
        timestamp=0,
        timestamp_ms=0,
        coinbase=ZERO_ADDRESS,
        state_root=Hash32(StateTree((k, after) for k, (_, after) in changes.items() if after).root),
        transactions_root=Hash32(EMPTY_KECCAK),
        receipts_root=Hash32(EMPTY_KECCAK),
        messages_root=Hash32(EMPTY_KECCAK),
        withdrawals_root=Hash32(EMPTY_KECCAK),
        logs_bloom=EMPTY_BLOOM,
        gas_limit=manifest.gas_limit,
        gas_used=0,
        base_fee=manifest.base_fee,
        l1_origin=0,
        chain_id=manifest.chain_id,
    )
    return header, changes
