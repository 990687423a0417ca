"""Sequencer and verifier agree: blocks built with `apply_transaction` + `seal_block` on one
EvmVM replay with `apply_block` on another, fresh one, to the same state root."""

from __future__ import annotations

from eth_account import Account

from rollup.bloom import EMPTY_BLOOM
from rollup.crypto import EMPTY_KECCAK
from rollup.transactions import decode_transaction
from rollup.types import ZERO_HASH, Address, Block, BlockEnv, BlockHeader, Hash32, Transaction
from vm.commitment import StateTree
from vm.evm import EvmVM
from vm.state import DictReader, State
from vm.stf import apply_block, apply_transaction, begin_block, seal_block

from .conftest import (
    ALICE,
    BASE_FEE,
    BOB,
    CAROL,
    CHAIN_ID,
    COINBASE,
    FUNDS,
    GAS_LIMIT,
    KEYS,
    Contract,
    create_address,
    genesis,
)


def sign(sender: Address, nonce: int, to: bytes | None, data: bytes, value: int = 0) -> Transaction:
    fields = {
        "type": 2,
        "chainId": CHAIN_ID,
        "nonce": nonce,
        "maxFeePerGas": 2 * BASE_FEE,
        "maxPriorityFeePerGas": 1,
        "gas": 2_000_000,
        "to": to or b"",
        "value": value,
        "data": data,
    }
    raw = Account.sign_transaction(fields, KEYS[sender]).raw_transaction
    return decode_transaction(bytes(raw), CHAIN_ID)


def genesis_header(root: bytes) -> BlockHeader:
    return BlockHeader(
        number=0,
        parent_hash=ZERO_HASH,
        timestamp=0,
        timestamp_ms=0,
        coinbase=COINBASE,
        state_root=Hash32(root),
        transactions_root=Hash32(EMPTY_KECCAK),
        receipts_root=Hash32(EMPTY_KECCAK),
        messages_root=Hash32(EMPTY_KECCAK),
        withdrawals_root=Hash32(EMPTY_KECCAK),
        logs_bloom=EMPTY_BLOOM,
        gas_limit=GAS_LIMIT,
        gas_used=0,
        base_fee=BASE_FEE,
        l1_origin=0,
        chain_id=CHAIN_ID,
    )


def commit(
    data: dict[bytes, bytes], changes: dict[bytes, tuple[bytes | None, bytes | None]]
) -> None:
    for key, (_before, after) in changes.items():
        if after is None:
            data.pop(key, None)
        else:
            data[key] = after


def test_a_verifier_replays_the_sequencers_blocks(contracts: dict[str, Contract]) -> None:
    token, probe = contracts["Token"], contracts["Probe"]
    start = genesis({ALICE: FUNDS, BOB: FUNDS, CAROL: FUNDS})
    t, p = create_address(ALICE, 0), create_address(ALICE, 1)
    batches = [
        [
            sign(ALICE, 0, None, token.deploy_data(("uint256", 10**6))),
            sign(ALICE, 1, None, probe.bytecode),
            sign(BOB, 0, CAROL, b"", value=10**18),
        ],  # a plain transfer: the STF skips the VM
        [
            sign(ALICE, 2, t, token.calldata("transfer", BOB, 7)),
            sign(BOB, 1, t, token.calldata("transfer", CAROL, 8)),  # fails: BOB has 7
            sign(CAROL, 0, p, probe.calldata("balanceOfAccount", COINBASE)),  # last block's fees
            sign(BOB, 2, p, b"", value=5),
        ],
        [
            sign(BOB, 3, t, token.calldata("transfer", CAROL, 7)),
            sign(CAROL, 1, p, probe.calldata("recurse", 3)),
        ],
    ]

    # The sequencer: one VM for all blocks, a new State per block, as sequencer/node.py does.
    data, tree, vm = (
        dict(start),
        StateTree(start.items()),
        EvmVM(CHAIN_ID, GAS_LIMIT, start.items()),
    )
    parent = first = genesis_header(tree.root)
    blocks: list[Block] = []
    for batch in batches:
        state = State(DictReader(data))
        env = BlockEnv(
            parent.number + 1, parent.timestamp + 1, COINBASE, BASE_FEE, GAS_LIMIT, CHAIN_ID
        )
        begin_block(state, env, vm)
        receipts, gas = [], 0
        for tx in batch:
            receipts.append(apply_transaction(state, env, vm, tx, gas))
            gas = receipts[-1].cumulative_gas_used
        sealed = seal_block(state, parent, env, env.timestamp * 1000, batch, receipts, tree)
        commit(data, sealed.changes)
        blocks.append(sealed.block)
        parent = sealed.block.header
    statuses = [[r.status for r in block.receipts] for block in blocks]
    assert statuses == [[1, 1, 1], [1, 0, 1, 1], [1, 1]]
    fees = sum(r.gas_used * r.effective_gas_price for r in blocks[0].receipts)
    seen = probe.returns("balanceOfAccount", blocks[1].receipts[2].return_data)
    assert seen == (fees,)

    # The verifier: a fresh VM and tree, from genesis, checking every commitment.
    vdata, vtree = dict(start), StateTree(start.items())
    verifier = EvmVM(CHAIN_ID, GAS_LIMIT, start.items())
    parent = first
    for block in blocks:
        replayed = apply_block(State(DictReader(vdata)), parent, block, verifier, vtree)
        commit(vdata, replayed.changes)
        parent = block.header
    assert vtree.root == tree.root and vdata == data
