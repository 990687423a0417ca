"""What a contract reads of its block (NUMBER, TIMESTAMP, COINBASE, CHAINID, GASLIMIT,
PREVRANDAO, BASEFEE, BLOCKHASH) through the real STF path: blocks built with `execute_block`
and sealed as the sequencer's builder does, replayed by a verifier with `apply_block`, and
simulated with `EvmVM.call` as eth_call does.

Two readings are pinned known differences from Ethereum, both pyrevm's (vm/evm/engine.py, the
README's EVM gaps): BASEFEE reads 0, not the app's base fee, and BLOCKHASH(n) reads
keccak(decimal n), not block n's hash. If a test here fails on them, the engine changed: make
the readings real (and keep the STF the only fee check), then update the README and NOTES.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from eth_account import Account

from rollup.transactions import decode_transaction
from rollup.types import ZERO_HASH, Address, Block, BlockEnv, BlockHeader, Transaction
from vm.commitment import StateTree
from vm.evm import EvmVM
from vm.evm.engine import ENGINE_BASE_FEE, Engine, engine_block_hash
from vm.interface import Message
from vm.state import DictReader, State, storage_key
from vm.stf import InvalidTransaction, apply_block, apply_transaction, env_of, execute_block

from .block_env_probe import FIELDS, INIT, decode
from .conftest import ALICE, BASE_FEE, BOB, CHAIN_ID, COINBASE, FUNDS, GAS_LIMIT, KEYS, genesis
from .test_blocks import commit, genesis_header

BLOCK_SECONDS = 12  # block n's timestamp is 12 n, so no two fields read alike


def sign(sender: Address, nonce: int, to: bytes | None, data: bytes, max_fee: int) -> Transaction:
    fields = {
        "type": 2,
        "chainId": CHAIN_ID,
        "nonce": nonce,
        "maxFeePerGas": max_fee,
        "maxPriorityFeePerGas": 0,
        "gas": 1_000_000,
        "to": to or b"",
        "value": 0,
        "data": data,
    }
    raw = Account.sign_transaction(fields, KEYS[sender]).raw_transaction
    return decode_transaction(bytes(raw), CHAIN_ID)


@dataclass
class Node:
    """A sequencer's chain in miniature: one VM, a State per block, blocks sealed on a tree."""

    data: dict[bytes, bytes] = field(default_factory=lambda: genesis({ALICE: FUNDS, BOB: FUNDS}))
    blocks: list[Block] = field(default_factory=list)
    probe: Address = Address(bytes(20))  # the probe contract, once deployed

    def __post_init__(self) -> None:
        self.start = dict(self.data)
        self.tree = StateTree(self.data.items())
        self.vm = EvmVM(CHAIN_ID, GAS_LIMIT, self.data.items())
        self.head: BlockHeader = genesis_header(self.tree.root)
        self.first = self.head

    def env(self) -> BlockEnv:
        """The next block's, as sequencer/builder.py makes it."""
        number = self.head.number + 1
        return BlockEnv(number, BLOCK_SECONDS * number, COINBASE, BASE_FEE, GAS_LIMIT, CHAIN_ID)

    def produce(self, *txs: Transaction) -> Block:
        env = self.env()
        executed = execute_block(State(DictReader(self.data)), env, self.vm, (), txs, strict=False)
        assert not executed.dropped, executed.dropped
        sealed = executed.seal(self.head, env.timestamp * 1000, self.tree)
        commit(self.data, sealed.changes)
        self.blocks.append(sealed.block)
        self.head = sealed.block.header
        return sealed.block

    def storage(self, data: dict[bytes, bytes] | None = None) -> bytes:
        """The probe's slots, one word each, joined (its return data's shape)."""
        data = self.data if data is None else data
        return b"".join(
            (data.get(storage_key(self.probe, i.to_bytes(32, "big"))) or b"").rjust(32, b"\x00")
            for i in range(len(FIELDS))
        )

    def call(self, block: Block, price: int) -> dict[str, int]:
        """eth_call of the probe in `block`'s env, from BOB at gas price `price` (against the
        newest state: the probe reads nothing of it)."""
        msg = Message(BOB, self.probe, 0, b"\x01", 1_000_000, BOB, price)
        result = self.vm.call(State(DictReader(self.data)), env_of(block.header), msg)
        assert result.success, result
        return decode(result.output)


@pytest.fixture(scope="module")
def node() -> Node:
    """Block 1 deploys the probe; block 2 runs it in a transaction."""
    node = Node()
    deployed = node.produce(sign(ALICE, 0, None, INIT, 2 * BASE_FEE))
    created = deployed.receipts[0].contract_address
    assert created is not None
    node.probe = created
    node.produce(sign(ALICE, 1, node.probe, b"\x01", 2 * BASE_FEE))
    return node


def expected(header: BlockHeader) -> dict[str, int]:
    """What a contract reads in block `header` on this engine; the two pinned gaps marked."""
    return {
        "basefee": ENGINE_BASE_FEE,  # KNOWN GAP: Ethereum gives header.base_fee
        # KNOWN GAP: Ethereum gives the parent's hash, header.parent_hash
        "parent_hash": int.from_bytes(engine_block_hash(header.number, header.number - 1), "big"),
        "this_hash": 0,
        "number": header.number,
        "timestamp": header.timestamp,
        "coinbase": int.from_bytes(header.coinbase, "big"),
        "chain_id": header.chain_id,
        "gas_limit": header.gas_limit,
        "prev_randao": 0,  # the header has no mix hash: the STF's env carries ZERO_HASH
    }


def test_a_transaction_reads_its_blocks_environment(node: Node) -> None:
    block = node.blocks[1]
    assert block.receipts[0].status == 1
    seen = decode(node.storage())
    assert seen == expected(block.header)
    assert seen["number"] == 2 and seen["timestamp"] == 2 * BLOCK_SECONDS
    assert seen["coinbase"] == int.from_bytes(COINBASE, "big")
    assert (seen["chain_id"], seen["gas_limit"]) == (CHAIN_ID, GAS_LIMIT)


def test_basefee_and_blockhash_are_pinned_gaps(node: Node) -> None:
    """Not Ethereum's values: see the module's docstring before changing these asserts."""
    block = node.blocks[1]
    seen = decode(node.storage())
    assert block.header.base_fee == BASE_FEE != seen["basefee"] == 0
    parent_hash = int.from_bytes(block.header.parent_hash, "big")
    assert parent_hash == int.from_bytes(node.blocks[0].hash, "big") != seen["parent_hash"]
    assert seen["parent_hash"].to_bytes(32, "big") == engine_block_hash(2, 1)


def test_a_verifier_replays_the_same_readings(node: Node) -> None:
    """The readings depend on the header alone, so `apply_block` on a fresh VM agrees."""
    data, tree = dict(node.start), StateTree(node.start.items())
    verifier, parent = EvmVM(CHAIN_ID, GAS_LIMIT, node.start.items()), node.first
    for block in node.blocks:
        replayed = apply_block(State(DictReader(data)), parent, block, verifier, tree)
        commit(data, replayed.changes)
        parent = block.header
    assert tree.root == node.tree.root and data == node.data
    assert node.storage(data) == node.storage()


@pytest.mark.parametrize("price", [0, 1, BASE_FEE, 2 * BASE_FEE])
def test_eth_call_reads_what_the_transaction_read(node: Node, price: int) -> None:
    """A simulation in block 2's env sees what block 2's transaction saw, at any gas price: one
    below the base fee (1) runs as it always has, since only the STF checks fees."""
    block = node.blocks[1]
    assert node.call(block, price) == decode(node.storage())
    assert node.call(node.blocks[0], price) == expected(node.blocks[0].header)


def test_a_fee_below_the_base_fee_is_refused_by_the_stf() -> None:
    node = Node()
    env = node.env()
    tx = sign(ALICE, 0, None, INIT, BASE_FEE - 1)
    with pytest.raises(InvalidTransaction, match="max fee per gas less than block base fee"):
        apply_transaction(State(DictReader(node.data)), env, node.vm, tx, 0)


# ---- the engine itself: pyrevm 0.3.7's behaviour, pinned ----

BLOCKHASH_OF_CALLDATA = bytes.fromhex("5f35405f5260205ff3")  # return BLOCKHASH(cd[0])
BASEFEE_CODE = bytes.fromhex("485f5260205ff3")  # return BASEFEE
CALLER, TARGET = Address(b"\x11" * 20), Address(b"\xcc" * 20)


def engine_running(code: bytes, env: BlockEnv) -> Engine:
    engine = Engine(CHAIN_ID, GAS_LIMIT)
    engine.set_block(env)
    engine.put_account(CALLER, 0, 10**18, b"")
    engine.put_account(TARGET, 1, 0, code)
    return engine


@pytest.mark.parametrize("base_fee", [0, 7, 10**9])
def test_the_engine_reads_basefee_as_zero(base_fee: int) -> None:
    env = BlockEnv(5, 60, COINBASE, base_fee, GAS_LIMIT, CHAIN_ID)
    run = engine_running(BASEFEE_CODE, env).run(CALLER, TARGET, 0, b"", 100_000, 0)
    assert run.success and int.from_bytes(run.output, "big") == ENGINE_BASE_FEE == 0


@pytest.mark.parametrize("number", [0, 43, 44, 45, 299, 300, 301, 2**64])
def test_the_engines_blockhash_is_keccak_of_the_number(number: int) -> None:
    """In block 300: keccak(decimal n) for 44 <= n < 300, zero elsewhere (as on Ethereum)."""
    env = BlockEnv(300, 3600, COINBASE, BASE_FEE, GAS_LIMIT, CHAIN_ID)
    engine = engine_running(BLOCKHASH_OF_CALLDATA, env)
    run = engine.run(CALLER, TARGET, 0, number.to_bytes(32, "big"), 100_000, 0)
    assert run.success and run.output == engine_block_hash(300, number)
    assert (run.output == ZERO_HASH) == (not 44 <= number < 300)
