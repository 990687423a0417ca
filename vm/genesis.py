"""Block 0 of an app chain: dev balances (only where the manifest enables dev accounts), then
the app: a native app's code, its owner and its `init()` (called by the owner), or an EVM app's
contract created by the owner's first transaction (nonce 0, price 0). The owner is whatever
address the manifest names; nothing here assumes it is a dev account or holds a balance."""

from __future__ import annotations

from rollup.bloom import EMPTY_BLOOM
from rollup.crypto import EMPTY_KECCAK
from rollup.deposits import L2_TO_L1_ADDRESS
from rollup.errors import ManifestError
from rollup.genesis import DEV_ADDRESSES
from rollup.manifest import Manifest, fee_vault
from rollup.messages import APP_BUS_ADDRESS
from rollup.types import ZERO_HASH, BlockEnv, BlockHeader, Hash32
from vm.bridge import withdrawals_root_of
from vm.commitment import StateTree
from vm.contracts.app_bus import APP_BUS_RUNTIME
from vm.contracts.l2_to_l1 import L2_TO_L1_RUNTIME
from vm.evm.artifact import Artifact, constructor_calldata
from vm.evm.machine import EvmVM
from vm.interface import Message
from vm.native.runtime import AppRuntime
from vm.native.upgrades import install_app, install_system
from vm.native.withdrawals import install_l2_to_l1
from vm.state import State, StateReader, code_key, get_account, set_account

__all__ = ["build_genesis"]


def build_genesis(
    manifest: Manifest, runtime: AppRuntime | Artifact | None, base: StateReader
) -> tuple[BlockHeader, dict[bytes, tuple[bytes | None, bytes | None]]]:
    """The genesis header and the state it starts with (applied over an empty `base`)."""
    state = State(base)
    if manifest.dev_accounts:
        for address in DEV_ADDRESSES:
            set_account(state, address, 0, manifest.dev_balance)
    # the coinbase every block of the app pays, from block 0 on (EVM's COINBASE agrees)
    coinbase = fee_vault(manifest.name)
    env = BlockEnv(0, 0, coinbase, manifest.base_fee, manifest.gas_limit, manifest.chain_id)
    if isinstance(runtime, Artifact):
        state.set(code_key(APP_BUS_ADDRESS), APP_BUS_RUNTIME)  # cross-app messages (vm/bus.py)
        state.set(code_key(L2_TO_L1_ADDRESS), L2_TO_L1_RUNTIME)  # withdrawals (vm/bridge.py)
        state.commit()
        _deploy(state, env, manifest, runtime)
    elif runtime is not None:
        install_system(state)
        install_l2_to_l1(state)
        install_app(state, runtime.address, runtime.source, manifest.owner)
        runtime.run_init(state, env, manifest.owner, dict(manifest.init_args))
    state.commit()
    changes = state.changes()
    header = BlockHeader(
        number=0,
        parent_hash=ZERO_HASH,
        timestamp=0,
        timestamp_ms=0,
        coinbase=coinbase,
        state_root=Hash32(StateTree((k, after) for k, (_, after) in changes.items() if after).root),
        transactions_root=Hash32(EMPTY_KECCAK),
        receipts_root=Hash32(EMPTY_KECCAK),
        messages_root=Hash32(EMPTY_KECCAK),
        withdrawals_root=Hash32(withdrawals_root_of(state)),
        logs_bloom=EMPTY_BLOOM,
        gas_limit=manifest.gas_limit,
        gas_used=0,
        base_fee=manifest.base_fee,
        l1_origin=0,
        chain_id=manifest.chain_id,
    )
    return header, changes


def _deploy(state: State, env: BlockEnv, manifest: Manifest, artifact: Artifact) -> None:
    owner = manifest.owner
    nonce, balance = get_account(state, owner)
    if nonce != 0:
        raise ManifestError("the genesis owner must be a fresh account")
    set_account(state, owner, 1, balance)  # the STF's nonce bump, as for any creation
    data = constructor_calldata(artifact, dict(manifest.init_args))
    items = [(key, after) for key, (_, after) in state.changes().items()]  # base is empty
    vm = EvmVM(manifest.chain_id, manifest.gas_limit, items)
    msg = Message(owner, None, 0, data, manifest.gas_limit // 2, owner, 0)
    result = vm.execute(state, env, msg)
    if not result.success or result.contract_address != manifest.address:
        raise ManifestError(f"deploying {artifact.name} at genesis failed: 0x{result.output.hex()}")
