"""The bridge on a native app chain, in process: deposits from a fake L1 view (ETH, tokens,
forced calls), withdrawals (the system call, an app's `withdraw`, a bridged token's), their
tree in the header, and a verifier's replay agreeing block for block."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from da.commitment import Commitment
from rollup.blocks import block_entries, block_entry_receipts
from rollup.crypto import keccak
from rollup.deposits import (
    L2_TO_L1_ADDRESS,
    Deposit,
    bridged_token_address,
    deposit_from_event,
)
from rollup.errors import InvalidBlock
from rollup.genesis import DEV_ADDRESSES
from rollup.outputs import output_root
from rollup.types import Address, Hash32
from rollup.withdrawals import tree_proof, verify_tree_proof
from sequencer.harness import LocalChain
from sequencer.withdrawals import withdrawal_proof
from services.scaffold import scaffold
from vm.bridge import initiate_withdrawal_calldata, next_deposit_nonce, withdrawal_count
from vm.commitment import StateTree
from vm.interface import Message
from vm.native.abi import decode_args, encode_values, selector
from vm.state import DictReader, State, get_balance
from vm.stf import L1Origin, apply_block, env_of

L1_TOKEN = Address(b"\x7a" * 20)
ALICE, BOB = DEV_ADDRESSES[1], DEV_ADDRESSES[2]
L1_USER = Address(b"\x42" * 20)  # someone with nothing on the app chain yet
ETHER = 10**18


class FakeL1:
    """An L1 view: deposits the test makes, at L1 blocks it chooses, all confirmed."""

    def __init__(self, chain_id: int) -> None:
        self.chain_id = chain_id
        self.height = 1
        self.queue: list[Deposit] = []

    def origin(self) -> L1Origin:
        return L1Origin(self.height, Hash32(keccak(self.height.to_bytes(8, "big"))))

    def deposits(self, next_nonce: int, origin: L1Origin, limit: int) -> Sequence[Deposit]:
        due = [d for d in self.queue if d.nonce >= next_nonce and d.l1_block <= origin.number]
        return due[:limit]

    def deposit(
        self,
        sender: bytes,
        to: bytes,
        mint: int = 0,
        value: int = 0,
        gas: int = 200_000,
        token: bytes = bytes(20),
        amount: int = 0,
        data: bytes = b"",
    ) -> Deposit:
        self.height += 1
        opaque = (
            to
            + mint.to_bytes(32, "big")
            + value.to_bytes(32, "big")
            + gas.to_bytes(8, "big")
            + token
            + amount.to_bytes(32, "big")
            + bytes([6])
            + b"USDX".ljust(32, b"\0")
            + data
        )
        block_hash = keccak(self.height.to_bytes(8, "big"))
        deposit = deposit_from_event(
            self.chain_id, len(self.queue), sender, opaque, block_hash, 0, self.height
        )
        self.queue.append(deposit)
        return deposit


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[tuple[LocalChain, FakeL1]]:
    app = scaffold(tmp_path / "token", "token", "tok", 904001)
    with LocalChain.from_dir(app) as local:
        l1 = FakeL1(local.node.chain_id)
        local.node.l1 = l1
        yield local, l1


def produce(local: LocalChain) -> Any:
    sealed = local.node.produce(next(local._clock))
    assert sealed is not None, "nothing to build"
    return sealed.block


def token_call(local: LocalChain, token: bytes, signature: str, *args: Any) -> Any:
    types = signature[signature.index("(") + 1 : -1].split(",") if "()" not in signature else []
    state = local.node.state_at(local.node.committed.number)
    data = selector(signature) + encode_values(types, list(args))
    result = local.node.vm.execute(
        state,
        env_of(local.node.committed),
        Message(ALICE, Address(token), 0, data, 10**7, ALICE, 0),
    )
    assert result.success, result.output
    return result.output


def test_an_eth_deposit_is_credited_once_first_in_its_block(chain: Any) -> None:
    local, l1 = chain
    deposit = l1.deposit(L1_USER, BOB, mint=ETHER, value=ETHER)
    before = get_balance(local.node.state, BOB)
    block = produce(local)
    assert block.deposits == (deposit,) and block_entries(block)[0] == deposit
    assert block.header.l1_origin == l1.height and block.header.l1_origin_hash == l1.origin().hash
    assert get_balance(local.node.state, BOB) == before + ETHER
    receipt = block_entry_receipts(block)[0]
    assert receipt.status == 1 and receipt.effective_gas_price == 0
    assert next_deposit_nonce(local.node.state) == 1
    assert not local.node.has_work()  # offered again, it is not due: credited exactly once
    assert local.node.transaction(deposit.hash).tx == deposit


def test_a_failed_deposit_call_keeps_the_mint_with_the_sender(chain: Any) -> None:
    local, l1 = chain
    app = local.app.address  # the token app takes no plain transfers
    l1.deposit(L1_USER, app, mint=ETHER, value=ETHER)
    receipt = block_entry_receipts(produce(local))[0]
    assert receipt.status == 0
    assert get_balance(local.node.state, L1_USER) == ETHER


def test_a_forced_call_runs_as_the_l1_sender(chain: Any) -> None:
    """A censored user: the deposit's calldata calls the token app's `transfer` with
    msg.sender = the L1 sender (the same key on both chains for an EOA)."""
    local, l1 = chain
    owner = DEV_ADDRESSES[0]  # holds the token's supply
    data = selector("transfer(address,uint256)") + encode_values(
        ["address", "uint256"], [BOB, 1234]
    )
    l1.deposit(owner, local.app.address, data=data, gas=200_000)
    receipt = block_entry_receipts(produce(local))[0]
    assert receipt.status == 1
    assert local.call("balanceOf", BOB) == 1234


def test_a_token_deposit_installs_the_bridged_token_and_mints(chain: Any) -> None:
    local, l1 = chain
    token = bridged_token_address(L1_TOKEN)
    l1.deposit(L1_USER, ALICE, token=L1_TOKEN, amount=500)
    produce(local)
    l1.deposit(L1_USER, BOB, token=L1_TOKEN, amount=70)
    produce(local)

    def read(signature: str, *args: Any, out: str = "uint256") -> Any:
        return decode_args([out], token_call(local, token, signature, *args))[0]

    assert read("balanceOf(address)", ALICE) == 500 and read("balanceOf(address)", BOB) == 70
    assert read("totalSupply()") == 570 and read("decimals()", out="uint8") == 6
    assert read("symbol()", out="string") == "USDX"
    assert read("name()", out="string") == "Bridged USDX"
    assert read("l1Token()", out="address") == L1_TOKEN


def test_withdrawals_join_the_tree_in_the_header_and_leave_the_supply(chain: Any) -> None:
    local, l1 = chain
    before = get_balance(local.node.state, ALICE)
    target = Address(b"\x99" * 20)
    data = initiate_withdrawal_calldata(target, 100_000, b"hello")
    receipt = local.send_raw(
        local.sign(ALICE, L2_TO_L1_ADDRESS, data, value=3 * ETHER, gas=200_000)
    )
    assert receipt.status == 1
    block = local.node.block(local.node.committed.number)
    (withdrawal,) = block.withdrawals
    assert (withdrawal.sender, withdrawal.target, withdrawal.value, withdrawal.data) == (
        ALICE,
        target,
        3 * ETHER,
        b"hello",
    )
    assert get_balance(local.node.state, L2_TO_L1_ADDRESS) == 0  # burned
    assert get_balance(local.node.state, ALICE) < before - 3 * ETHER
    proof = tree_proof([withdrawal.hash], 0)
    assert verify_tree_proof(block.header.withdrawals_root, 1, withdrawal.hash, 0, proof)
    # a bridged token's withdraw burns and records the token
    l1.deposit(L1_USER, BOB, token=L1_TOKEN, amount=40)
    produce(local)
    token = bridged_token_address(L1_TOKEN)
    calldata = selector("withdraw(address,uint256)") + encode_values(
        ["address", "uint256"], [target, 15]
    )
    assert local.send_raw(local.sign(BOB, token, calldata)).status == 1
    latest = local.node.block(local.node.committed.number)
    (token_withdrawal,) = latest.withdrawals
    t = token_withdrawal
    assert (t.nonce, t.l1_token, t.token_amount, t.sender, t.value) == (1, L1_TOKEN, 15, BOB, 0)
    assert withdrawal_count(local.node.state) == 2
    hashes = [withdrawal.hash, token_withdrawal.hash]
    assert verify_tree_proof(latest.header.withdrawals_root, 2, hashes[0], 0, tree_proof(hashes, 0))


def test_a_withdrawal_with_a_bad_target_or_too_little_balance_fails(chain: Any) -> None:
    local, _l1 = chain
    zero = initiate_withdrawal_calldata(bytes(20), 0, b"")
    raw = local.sign(ALICE, L2_TO_L1_ADDRESS, zero, value=1, gas=100_000)
    assert local.send_raw(raw).status == 0
    assert withdrawal_count(local.node.state) == 0


def test_a_verifier_replays_deposits_and_withdrawals_to_the_same_blocks(chain: Any) -> None:
    local, l1 = chain
    l1.deposit(L1_USER, BOB, mint=ETHER, value=ETHER)
    l1.deposit(L1_USER, ALICE, token=L1_TOKEN, amount=5)
    produce(local)
    data = initiate_withdrawal_calldata(Address(b"\x55" * 20), 0, b"")
    local.send_raw(local.sign(BOB, L2_TO_L1_ADDRESS, data, value=ETHER // 2, gas=100_000))
    blocks = [local.node.block(n) for n in range(local.node.committed.number + 1)]
    with LocalChain(local.node.manifest, local.app.source) as fresh:  # genesis, same code
        world: dict[bytes, bytes] = dict(fresh.node.state.items())
        tree = StateTree(world.items())
        parent = blocks[0].header
        vm = fresh.node.vm
        for block in blocks[1:]:
            state = State(DictReader(world))
            sealed = apply_block(state, parent, block, vm, tree)
            for key, (_before, after) in sealed.changes.items():
                if after is None:
                    world.pop(key, None)
                else:
                    world[key] = after
            assert sealed.block.hash == block.hash
            parent = block.header
        # deposits out of order make the block invalid
        bad = blocks[1]
        swapped = type(bad)(
            bad.header,
            bad.hash,
            bad.transactions,
            bad.receipts,
            deposits=tuple(reversed(bad.deposits)),
        )
        with pytest.raises(InvalidBlock, match="nonce"):
            apply_block(
                State(DictReader(dict(fresh.node.state.items()))),
                blocks[0].header,
                swapped,
                vm,
                StateTree(fresh.node.state.items()),
            )


VAULT = """
from vm.native import App, address, method, payable, uint256


class Vault(App):
    @payable
    def keep(self) -> None:
        pass

    @method
    def pay_out(self, to: address, value: uint256) -> None:
        self.withdraw(to, value, 50000, b"thanks")
"""


def test_an_app_withdraws_from_its_own_balance(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(VAULT)
    (tmp_path / "rollup.toml").write_text(
        '[app]\nname = "vault"\nchain_id = 904002\n[genesis]\ndev_accounts = true\n'
        'owner = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"\n'
    )
    with LocalChain.from_dir(tmp_path) as local:
        assert local.transact(ALICE, "keep", value=ETHER).status == 1
        target = Address(b"\x31" * 20)
        assert local.transact(ALICE, "pay_out", target, ETHER // 4).status == 1
        (w,) = local.node.block(local.node.committed.number).withdrawals
        assert (w.sender, w.target, w.value, w.gas_limit, w.data) == (
            local.app.address,
            target,
            ETHER // 4,
            50_000,
            b"thanks",
        )
        assert get_balance(local.node.state, local.app.address) == ETHER * 3 // 4
        too_much = local.transact(ALICE, "pay_out", target, ETHER)
        assert too_much.status == 0 and withdrawal_count(local.node.state) == 1


class Posted:
    """Batches "posted" by the test: (index, first, last, output root)."""

    def __init__(self) -> None:
        self.batches: list[Any] = []

    def post(self, local: LocalChain, first: int, last: int) -> None:
        header = local.node.block(last).header
        self.batches.append(
            Commitment(
                local.node.chain_id,
                len(self.batches),
                first,
                last,
                b"",
                output_root(header),
                b"",
                7,
                b"",
            )
        )

    def covering(self, block: int) -> Any:
        return next((b for b in self.batches if b.last_block >= block), None)


def test_a_withdrawal_proof_proves_against_the_oldest_covering_output(chain: Any) -> None:
    local, _l1 = chain
    posted = Posted()
    local.node.posted = posted
    hashes = []
    for i in range(3):
        data = initiate_withdrawal_calldata(Address(bytes([i + 1]) * 20), 0, b"")
        local.send_raw(local.sign(ALICE, L2_TO_L1_ADDRESS, data, value=i + 1, gas=100_000))
        hashes.append(local.node.block(local.node.committed.number).withdrawals[0].hash)
    head = local.node.committed.number
    with pytest.raises(Exception, match="not covered by a posted output root"):
        withdrawal_proof(local.node, hashes[1])
    posted.post(local, 1, head - 1)  # covers the first two
    posted.post(local, head, head)
    proof = withdrawal_proof(local.node, hashes[1])
    assert (proof.batch_index, proof.output_block, proof.count) == (0, head - 1, 2)
    header = local.node.block(head - 1).header
    assert output_root(header) == proof.output_root
    assert verify_tree_proof(
        proof.withdrawals_root, proof.count, hashes[1], 1, list(proof.siblings)
    )
    assert withdrawal_proof(local.node, hashes[2]).batch_index == 1
    with pytest.raises(Exception, match="unknown withdrawal"):
        withdrawal_proof(local.node, b"\x01" * 32)
