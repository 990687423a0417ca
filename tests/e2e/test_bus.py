"""The message bus between real node processes: both transports, malformed frames, and crashes.

Fault tests SIGKILL the receiving node, the sending node or the NATS server while messages are
in flight, restart it on the same port and data, keep sending, and then require that every
call ran exactly once, every callback exactly once, and that both chains end with the state
roots of a crash-free run of the same transactions (in process, `LocalNetwork`). A few rounds
of each run by default; `-m slow` (or ROLLUP_SLOW=1) adds 20-round versions.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
from pathlib import Path

import pytest

from benchmarks.bus import BusPair
from benchmarks.common import BenchError
from rollup import rlp
from rollup.rlp import encode_int
from sequencer.harness import LocalChain
from sequencer.network import LocalNetwork
from services.bus.wire import VERSION

pytestmark = pytest.mark.e2e

CALLS_PER_TX = 15
SETTLE_TIMEOUT = 90.0


def _latest_root(pair: BusPair, which: str) -> str:
    node = pair.a if which == "a" else pair.b
    return str(pair.rpc(node, "eth_getBlockByNumber", "latest", False)["stateRoot"])


def _crash_free_roots(pair: BusPair, raws: list[str]) -> tuple[str, str]:
    """The same transactions on an in-process network that never crashes."""
    apps = pair.root / "apps"
    with LocalNetwork(
        [LocalChain.from_dir(apps / "pinger"), LocalChain.from_dir(apps / "ponger")]
    ) as net:
        a, b = net.chains
        for raw in raws:
            receipt = a.send_raw(bytes.fromhex(raw[2:]))
            assert receipt.status == 1
            net.step()
        net.settle()
        return "0x" + a.node.committed.state_root.hex(), "0x" + b.node.committed.state_root.hex()


def _settle_and_check(pair: BusPair, raws: list[str]) -> None:
    total = len(raws) * CALLS_PER_TX
    pair.wait(
        lambda: pair.stats()[1] >= total and pair.executed() >= total,
        SETTLE_TIMEOUT,
        f"{total} calls and callbacks",
    )
    assert pair.stats() == (total, total, 0)
    assert pair.executed() == total
    ks = list(range(1, total + 1))
    assert pair.views(pair.b, pair.ponger, "times(uint256)", ks) == [1] * total
    assert pair.views(pair.a, pair.pinger, "answers(uint256)", ks) == [1] * total
    time.sleep(0.3)  # let the last acknowledgements land; roots do not depend on them
    assert (_latest_root(pair, "a"), _latest_root(pair, "b")) == _crash_free_roots(pair, raws)


def _signed(pair: BusPair, count: int) -> list[str]:
    return [pair.ping_tx(i, 1 + i * CALLS_PER_TX, CALLS_PER_TX) for i in range(count)]


def _send_quietly(pair: BusPair, raws: list[str]) -> None:
    """Send while the node may be killed: connection errors are expected."""
    with contextlib.suppress(Exception):  # the point of the test is that the node dies
        pair.send_batch(raws)


def _resubmit(pair: BusPair, raws: list[str], upto: int) -> None:
    """After a sender restart: send again what it did not commit, up to `upto` txs."""
    nonce = pair.nonce()
    if nonce < upto:
        pair.send_batch(raws[nonce:upto])


def run_faults(root: Path, transport: str, fault: str, rounds: int, seed: int) -> None:
    rng = random.Random(seed)
    with BusPair(root, transport) as pair:
        raws = _signed(pair, 2 * rounds)
        for r in range(rounds):
            first, second = raws[2 * r], raws[2 * r + 1]
            if fault == "sender":
                sender = threading.Thread(target=_send_quietly, args=(pair, [first]))
                sender.start()
                time.sleep(rng.uniform(0.0, 0.03))
                pair.a.kill()
                sender.join()
                pair.a.start()
                _resubmit(pair, raws, 2 * r + 2)
                continue
            pair.send_batch([first])  # its messages are in flight ...
            time.sleep(rng.uniform(0.0, 0.01))
            victim = pair.b if fault == "receiver" else pair.nats
            assert victim is not None
            victim.kill()  # ... when the receiver or the NATS server dies
            pair.send_batch([second])  # the sender goes on: into its outbox
            victim.start()
        _settle_and_check(pair, raws)
        # the crashes did cut streams: some messages had to come again from an outbox, or
        # (NATS) the nodes lost the server and published again after reconnecting
        logs = pair.a.log_tail(100_000) + pair.b.log_tail(100_000)
        assert ("disconnected from NATS" if fault == "nats" else "re-sending") in logs


# ---- rejections (the fault tests below cover the happy path on both transports) ---------


def test_malformed_frames_are_rejected_and_change_nothing(tmp_path: Path) -> None:
    with BusPair(tmp_path, "embedded") as pair:
        raws = _signed(pair, 1)
        pair.send_batch(raws)
        _settle_and_check(pair, raws)
        head = pair.rpc(pair.b, "eth_getBlockByNumber", "latest", False)
        good = pair.ponger.chain_id
        v = bytes((VERSION,))
        frames = [
            b"\x07\x01\xc0",  # unknown version
            v + b"\x09\xc0",  # unknown kind
            v + b"\x01\xc2\x01",  # truncated RLP
            v + b"\x02" + rlp.encode([encode_int(good), encode_int(good), bytes(65)]),  # to self
        ]
        asyncio.run(_write_frames(tmp_path / "bus" / f"{good}.sock", frames))
        pair.wait(
            lambda: pair.b.log_tail(200).count("rejected a bus frame") >= 4,
            10,
            "the rejections in the log",
        )
        log = pair.b.log_tail(200)
        assert f"bus frame version 7 is not {VERSION}" in log
        assert "unknown bus frame kind 9" in log
        assert "bus frame is not valid RLP" in log
        assert f"bus frame from chain {good} to itself" in log
        assert pair.rpc(pair.b, "eth_getBlockByNumber", "latest", False) == head
        more = pair.ping_tx(1, 1 + CALLS_PER_TX, CALLS_PER_TX)  # the bus still works
        pair.send_batch([more])
        _settle_and_check(pair, [*raws, more])


async def _write_frames(path: Path, frames: list[bytes]) -> None:
    _reader, writer = await asyncio.open_unix_connection(str(path))
    for frame in frames:
        writer.write(len(frame).to_bytes(4, "big") + frame)
    await writer.drain()
    await asyncio.sleep(0.2)
    writer.close()


# ---- crashes -----------------------------------------------------------------------------------

DEFAULT_ROUNDS = 3
SLOW_ROUNDS = 20


@pytest.mark.parametrize(
    ("transport", "fault"),
    [("embedded", "receiver"), ("embedded", "sender"), ("nats", "nats")],
)
def test_sigkill_mid_stream_loses_and_repeats_nothing(
    tmp_path: Path, transport: str, fault: str
) -> None:
    run_faults(tmp_path, transport, fault, DEFAULT_ROUNDS, seed=1)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("transport", "fault", "rounds"),
    [
        ("embedded", "receiver", SLOW_ROUNDS),
        ("embedded", "sender", SLOW_ROUNDS),
        ("nats", "nats", SLOW_ROUNDS),
        ("nats", "receiver", 10),
        ("nats", "sender", 10),
    ],
)
def test_sigkill_mid_stream_many_rounds(
    tmp_path: Path, transport: str, fault: str, rounds: int
) -> None:
    run_faults(tmp_path, transport, fault, rounds, seed=2)


def test_bench_pair_refuses_an_unknown_transport(tmp_path: Path) -> None:
    with pytest.raises(BenchError, match="unknown transport"):
        BusPair(tmp_path, "carrier-pigeon")
