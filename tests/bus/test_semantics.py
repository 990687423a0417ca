"""Cross-app message semantics, in process: two real sequencers with the bus done by hand.

Pinger (chain 910001) sends `pong(k)` to Ponger (chain 910002) with a callback; Ponger counts
every execution of each k and Pinger every callback, so exactly-once shows in their state.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from rollup import rlp
from rollup.blocks import encode_receipt, outbound_leaf
from rollup.errors import InvalidBlock, MalformedMessage
from rollup.merkle import merkle_proof, verify_proof
from rollup.messages import BUS_ADDRESS, CrossMessage, encode_message, remote_address
from rollup.types import Block, BlockHeader
from sequencer.harness import LocalChain
from sequencer.network import LocalNetwork
from vm.bus import InvalidInbound, apply_inbound, error_data, inbound_progress, pending_call
from vm.native import NativeVM
from vm.native.abi import decode_args, encode_values, selector
from vm.state import State, get_balance
from vm.stf import env_of

Replay = Callable[[LocalChain], list[BlockHeader]]


def ping(net: LocalNetwork, first: int, n: int, sender: int = 0) -> list[CrossMessage]:
    """Send pings first..first+n-1 in one transaction; returns the messages now in flight."""
    a, b = net.chains
    before = len(net.in_flight)
    receipt = a.transact(a.accounts[sender], "ping", b.node.chain_id, b.app.address, first, n)
    assert receipt.status == 1, receipt
    return net.in_flight[before:]


def calldata(chain: LocalChain, signature: str, *args: object) -> bytes:
    name = signature.split("(")[0]
    spec = next(s for s in chain.app.app_class.__methods__.values() if s.name == name)
    assert spec.signature == signature
    return selector(signature) + encode_values(list(spec.arg_types), list(args))


def assert_exactly_once(net: LocalNetwork, ks: range) -> None:
    a, b = net.chains
    for k in ks:
        assert b.call("times", k) == 1, f"pong({k}) ran {b.call('times', k)} times"
        assert a.call("answers", k) == 1, f"callback of {k} ran {a.call('answers', k)} times"


# ---- the round trip --------------------------------------------------------------------------


def test_call_and_callback_round_trip(net: LocalNetwork) -> None:
    a, b = net.chains
    sent = ping(net, 1, 5)
    assert [m.channel_nonce for m in sent] == [0, 1, 2, 3, 4]
    assert all(m.is_call and m.reply and m.sender == a.app.address for m in sent)
    net.settle()
    assert_exactly_once(net, range(1, 6))
    assert a.call("stats") == (5, 5, 0)
    # the destination saw the sender's alias, never the bare address
    assert inbound_progress(b.node.state, a.node.chain_id) == 5
    assert inbound_progress(a.node.state, b.node.chain_id) == 5  # the five results
    last_caller = b.node.state.get(b"\x01" + b.app.address + (2).to_bytes(32, "big"))
    assert last_caller == remote_address(a.node.chain_id, a.app.address)
    # nothing is left pending at the source
    assert all(pending_call(State(a.node.state), m.id) is None for m in sent)


def test_blocks_replay_and_commit_to_their_messages(net: LocalNetwork, replay: Replay) -> None:
    ping(net, 1, 3)
    net.settle()
    ping(net, 4, 2)
    net.settle()
    a, b = net.chains
    for chain in (a, b):
        headers = replay(chain)  # apply_block checks messages_root with the other roots
        assert headers[-1].state_root == chain.node.committed.state_root
    # every message a block sent is provable against its source header
    proved = 0
    for chain in (a, b):
        for block in (chain.node.block(n) for n in range(1, chain.node.committed.number + 1)):
            leaves = [outbound_leaf(m) for m in block.outbound] + _inbound_leaves(block)
            for m in block.outbound:
                proof = merkle_proof(leaves, m.src_index)
                assert verify_proof(block.header.messages_root, outbound_leaf(m), proof)
                proved += 1
    assert proved == 10  # 5 calls, 5 results


def _inbound_leaves(block: Block) -> list[bytes]:
    return [
        b"\x01" + rlp.encode([encode_message(m), encode_receipt(r)])
        for m, r in zip(block.inbound, block.inbound_receipts, strict=True)
    ]


def test_inbound_messages_reference_their_source_block(net: LocalNetwork) -> None:
    a, b = net.chains
    sent = ping(net, 1, 2)
    source_number = a.node.committed.number
    net.settle()
    executed = [m for n in range(1, b.node.committed.number + 1) for m in b.node.block(n).inbound]
    assert [(m.src_block, m.src_index) for m in executed] == [(source_number, i) for i in (0, 1)]
    assert [m.id for m in executed] == [m.id for m in sent]


# ---- ordering, duplicates, loss --------------------------------------------------------------


def test_out_of_order_arrivals_execute_in_nonce_order(net: LocalNetwork) -> None:
    a, b = net.chains
    sent = ping(net, 1, 6)
    net.in_flight.clear()
    net.deliver(sent[3:])  # nonces 3..5 first: held, nothing can run
    assert not b.node.has_work()
    net.deliver(sent[1:3])
    assert not b.node.has_work()
    net.deliver(sent[:1])  # the gap closes
    assert b.node.has_work()
    net.settle()
    executed = [
        m.channel_nonce
        for n in range(1, b.node.committed.number + 1)
        for m in b.node.block(n).inbound
    ]
    assert executed == [0, 1, 2, 3, 4, 5]
    assert_exactly_once(net, range(1, 7))


def test_redelivery_is_harmless_before_and_after_execution(net: LocalNetwork) -> None:
    a, b = net.chains
    sent = ping(net, 1, 4)
    assert net.deliver(sent) == 4  # in flight was delivered twice: now and by settle
    assert net.deliver(sent) == 0
    net.settle()
    assert net.deliver(sent) == 0  # executed already: dropped on arrival
    results = [m for n in range(1, b.node.committed.number + 1) for m in b.node.block(n).outbound]
    assert net.deliver(results) == 0
    net.settle()
    assert_exactly_once(net, range(1, 5))


def test_shuffled_duplicated_delivery_keeps_exactly_once(net: LocalNetwork) -> None:
    rng = random.Random(7)
    a, b = net.chains
    all_sent: list[CrossMessage] = []
    for round_ in range(5):
        all_sent += ping(net, 1 + 10 * round_, 10)
    net.in_flight.clear()
    for _ in range(3):
        batch = rng.sample(all_sent, len(all_sent) // 2)
        net.deliver(batch)
        net.step()
    net.deliver(all_sent)
    net.settle()
    assert_exactly_once(net, range(1, 51))
    assert a.call("stats") == (50, 50, 0)


def test_lost_messages_are_held_up_until_resent(net: LocalNetwork) -> None:
    a, b = net.chains
    sent = ping(net, 1, 3)
    net.in_flight.clear()
    net.deliver(sent[1:])  # nonce 0 lost on the wire
    net.settle()
    assert b.call("times", 2) == 0  # nonce 1 waits for nonce 0
    net.deliver(sent)  # the sender re-sends what is not acknowledged
    net.settle()
    assert_exactly_once(net, range(1, 4))


def test_progress_survives_a_restart_of_the_destination(
    tmp_path: Path, app_dirs: tuple[Path, Path]
) -> None:
    PINGER, PONGER = app_dirs  # noqa: N806
    url = f"sqlite:///{tmp_path}/ponger.db"
    a = LocalChain.from_dir(PINGER)
    b = LocalChain.from_dir(PONGER, url)
    net = LocalNetwork([a, b])
    sent = ping(net, 1, 3)
    net.settle()
    b.node.close()
    b2 = LocalChain.from_dir(PONGER, url)  # reopened from its database
    try:
        assert inbound_progress(b2.node.state, a.node.chain_id) == 3
        assert not any(b2.node.receive(m) for m in sent)  # redelivered after restart: dropped
        assert b2.call("times", 1) == 1
    finally:
        b2.close()
        a.close()


# ---- results: failure, expiry, value ---------------------------------------------------------


def test_failed_call_reports_revert_data_to_the_callback(net: LocalNetwork) -> None:
    a, b = net.chains
    data = calldata(b, "fail(uint256)", 9)
    receipt = a.transact(a.accounts[0], "call", b.node.chain_id, b.app.address, data, 200_000, 60)
    assert receipt.status == 1
    net.settle()
    assert a.call("stats") == (0, 1, 1)
    assert b.call("total") == 0  # the failed call's writes rolled back
    error = a.node.state.get(b"\x01" + a.app.address + (4).to_bytes(32, "big"))
    assert error[4:] and decode_args(["string"], error[4:])[0] == "pong 9 refused"


def test_out_of_gas_at_the_destination_is_a_failure_result(net: LocalNetwork) -> None:
    a, b = net.chains
    data = calldata(b, "burn()")
    a.transact(a.accounts[0], "call", b.node.chain_id, b.app.address, data, 100_000, 60)
    net.settle()
    assert a.call("stats") == (0, 1, 1)


def test_expired_call_is_not_executed_and_fails(net: LocalNetwork) -> None:
    a, b = net.chains
    data = calldata(b, "pong(uint256)", 5)
    a.transact(a.accounts[0], "call", b.node.chain_id, b.app.address, data, 200_000, 30)
    (call,) = net.in_flight
    net.in_flight.clear()
    net.advance(60)
    net.deliver([call])
    net.settle()
    assert b.call("times", 5) == 0
    assert a.call("stats") == (0, 1, 1)
    error = a.node.state.get(b"\x01" + a.app.address + (4).to_bytes(32, "big"))
    assert error == error_data("MessageExpired(bytes32)", call.id)
    assert inbound_progress(b.node.state, a.node.chain_id) == 1  # consumed all the same


def test_value_travels_with_the_call_and_is_refunded_on_failure(net: LocalNetwork) -> None:
    a, b = net.chains
    alice = a.accounts[0]
    ok = calldata(b, "pong_value(uint256)", 1)
    a.transact(alice, "call_value", b.node.chain_id, b.app.address, ok, value=5 * 10**18)
    assert get_balance(a.node.state, BUS_ADDRESS) == 5 * 10**18  # escrowed at the source
    net.settle()
    assert get_balance(b.node.state, b.app.address) == 5 * 10**18  # minted at the destination
    assert b.call("value_received") == 5 * 10**18
    assert get_balance(a.node.state, BUS_ADDRESS) == 5 * 10**18  # it left the source chain
    bad = calldata(b, "pong(uint256)", 2)  # not payable: the call fails
    a.transact(alice, "call_value", b.node.chain_id, b.app.address, bad, value=3 * 10**18)
    assert get_balance(a.node.state, a.app.address) == 0
    net.settle()
    assert get_balance(a.node.state, a.app.address) == 3 * 10**18  # refunded to the sender app
    assert get_balance(a.node.state, BUS_ADDRESS) == 5 * 10**18
    assert get_balance(b.node.state, b.app.address) == 5 * 10**18
    assert a.call("stats") == (0, 2, 1)


def test_expired_call_with_value_is_refunded(net: LocalNetwork) -> None:
    a, b = net.chains
    data = calldata(b, "pong_value(uint256)", 1)
    a.transact(a.accounts[0], "call_value", b.node.chain_id, b.app.address, data, value=10**18)
    net.in_flight.clear()
    net.advance(2 * 86_400)  # past the default ttl of a day
    net.deliver(a.node.block(a.node.committed.number).outbound)
    net.settle()
    assert get_balance(a.node.state, a.app.address) == 10**18
    assert get_balance(a.node.state, BUS_ADDRESS) == 0
    assert get_balance(b.node.state, b.app.address) == 0


# ---- who may do what ------------------------------------------------------------------------


def test_callbacks_run_only_from_the_bus(net: LocalNetwork) -> None:
    a, _ = net.chains
    receipt = a.transact(a.accounts[0], "on_pong", bytes(32), True, (7).to_bytes(32, "big"))
    assert receipt.status == 0
    assert decode_args(["string"], receipt.return_data[4:])[0] == (
        "on_pong is a callback: only the message bus calls it"
    )
    assert a.call("answers", 7) == 0


def test_forged_result_is_consumed_without_effect(net: LocalNetwork) -> None:
    a, b = net.chains
    forged = CrossMessage(
        b.node.chain_id,
        1,
        0,
        0,
        a.node.chain_id,
        b.app.address,
        a.app.address,
        1,
        data=(3).to_bytes(32, "big"),
        success=True,
        ref_id=bytes(32),
    )
    assert a.node.receive(forged)
    net.settle()
    block = a.node.block(a.node.committed.number)
    assert block.inbound == (forged,)
    assert block.inbound_receipts[0].status == 0
    assert block.inbound_receipts[0].return_data == error_data("UnknownCall(bytes32)", bytes(32))
    assert a.call("stats") == (0, 0, 0)


def test_send_errors_fail_the_sending_transaction(net: LocalNetwork) -> None:
    a, b = net.chains
    own = a.transact(a.accounts[0], "ping", a.node.chain_id, b.app.address, 1, 1)
    assert own.status == 0
    assert "send: cannot send a message to the own chain" in own.return_data.decode(errors="ignore")
    huge_gas = a.transact(a.accounts[0], "call", b.node.chain_id, b.app.address, b"", 10**9, 60)
    assert huge_gas.status == 0
    assert net.in_flight == []
    assert inbound_progress(b.node.state, a.node.chain_id) == 0


# ---- the STF refuses blocks that break the channel rules -------------------------------------


def test_apply_inbound_refuses_out_of_order_without_touching_state(net: LocalNetwork) -> None:
    a, b = net.chains
    sent = ping(net, 1, 3)
    state = State(b.node.state)
    env = env_of(b.node.head)
    for bad in ([sent[1]], [sent[0], sent[2]], [sent[0], sent[0]]):
        with pytest.raises(InvalidInbound, match="expected"):
            apply_inbound(state, env, NativeVM(), bad, [])
        assert state.changes() == {}
    wrong_chain = replace(sent[0], dst_chain=4242)
    with pytest.raises(InvalidInbound, match="for chain 4242"):
        apply_inbound(state, env, NativeVM(), [wrong_chain], [])


def test_verifier_rejects_a_block_with_altered_inbound_messages(
    net: LocalNetwork, replay: Replay
) -> None:
    a, b = net.chains
    ping(net, 1, 2)
    net.settle()
    number = next(n for n in range(1, b.node.committed.number + 1) if b.node.block(n).inbound)
    block = b.node.block(number)
    altered = replace(block.inbound[0], data=calldata(b, "pong(uint256)", 99))
    with pytest.raises(InvalidBlock, match="mismatch"):
        _replay_with(replay, b, number, replace(block, inbound=(altered, *block.inbound[1:])))
    with pytest.raises(InvalidBlock, match="nonce 1, expected 0"):
        _replay_with(replay, b, number, replace(block, inbound=block.inbound[1:]))
    replay(b)  # the real block still replays


def _replay_with(replay: Replay, chain: LocalChain, number: int, replacement: Block) -> None:
    """Replay `chain` from genesis with block `number` swapped for `replacement`."""
    original = chain.node.block

    def block(n: int) -> Block | None:
        return replacement if n == number else original(n)

    chain.node.block = block  # type: ignore[method-assign]
    try:
        replay(chain)
    finally:
        chain.node.block = original  # type: ignore[method-assign]


# ---- malformed input at the node's door ------------------------------------------------------


def test_receive_refuses_a_message_for_another_chain(net: LocalNetwork) -> None:
    a, b = net.chains
    (call,) = ping(net, 1, 1)
    root = a.node.head.state_root
    with pytest.raises(MalformedMessage, match="for chain 910002 delivered to chain 910001"):
        a.node.receive(call)
    assert a.node.head.state_root == root and not a.node.has_work()
