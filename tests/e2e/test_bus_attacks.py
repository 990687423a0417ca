"""Forged cross-app messages against real node processes (issue 10, finding 2).

Two apps from the templates exchange messages: `token` (chain 901001) deposits into `book`
(the orderbook, chain 902002) with `send_to`, which the book credits in `receive_tokens` only
when the message comes from the token app. The attacker is another process of the same user:
it can reach the bus's Unix sockets (the directory keeps other users out, not it) and listen
as a chain nobody runs, so it sees honest frames sent there. Every forgery must be rejected
whole and change nothing; in particular it must not use up the nonce of the honest message it
imitates, which still executes when it arrives. With NATS, the server itself refuses
publishers without credentials and chains that send as another chain.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import stat
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import nats
import pytest
from eth_account import Account
from eth_utils import to_checksum_address

from rollup.blocks import block_hash, message_leaves, sign_header
from rollup.crypto import key_address
from rollup.genesis import DEV_KEYS
from rollup.manifest import Manifest, parse_manifest
from rollup.merkle import merkle_levels, merkle_multiproof
from rollup.messages import CALL, CrossMessage
from rollup.types import ZERO_HASH, BlockHeader, Hash32
from services.bus.nats import MAX_FRAME_AGE_S, MAX_FRAMES_PER_CHANNEL, MAX_STREAM_BYTES
from services.bus.nats_auth import ctl_subject, msg_subject
from services.bus.nats_server import NatsServerProcess
from services.bus.trust import write_sequencers
from services.bus.wire import (
    MESSAGES,
    BlockMessages,
    decode_frame,
    messages_frame,
    progress_frame,
)
from services.keys import load_key, load_or_create_key
from services.launch import NodeProcess
from tests.conftest import BOOK_CHAIN, TOKEN_CHAIN, render_pair
from tests.support import rpc, wait_for
from vm.native.abi import decode_args, encode_values, selector

pytestmark = pytest.mark.e2e

NOBODY = 903003
DEADLINE = 20.0
ALICE = Account.from_key(DEV_KEYS[0])
ALICE_ADDRESS = bytes.fromhex(ALICE.address[2:])
MILLION = 10**6 * 10**18


@dataclass
class Pair:
    """The token and book nodes on one bus (both keep their ports and data across restarts)."""

    root: Path
    token: NodeProcess
    book: NodeProcess
    token_app: Manifest
    book_app: Manifest
    bus_dir: Path
    nonce: int = 0  # alice's next transaction nonce on the token chain

    def book_balance(self, owner: bytes) -> int:
        data = selector("balance_of(address)") + encode_values(["address"], [owner])
        call = {"to": "0x" + self.book_app.address.hex(), "data": "0x" + data.hex()}
        out = rpc(self.book.url, "eth_call", call, "latest")
        return int(decode_args(["uint256"] * 4, bytes.fromhex(out[2:]))[0])

    def send_to(self, chain: int, app: bytes, owner: bytes, amount: int) -> None:
        """Alice moves `amount` of her tokens to `owner` inside `app` on `chain`."""
        data = selector("send_to(uint64,address,address,uint256)") + encode_values(
            ["uint64", "address", "address", "uint256"], [chain, app, owner, amount]
        )
        tx = ALICE.sign_transaction(
            {
                "type": 2,
                "chainId": TOKEN_CHAIN,
                "nonce": self.nonce,
                "to": to_checksum_address(self.token_app.address),
                "value": 0,
                "gas": 1_000_000,
                "maxFeePerGas": 2 * 10**9,
                "maxPriorityFeePerGas": 0,
                "data": data,
            }
        )
        self.nonce += 1
        tx_hash = rpc(self.token.url, "eth_sendRawTransaction", "0x" + tx.raw_transaction.hex())
        assert rpc(self.token.url, "eth_getTransactionReceipt", tx_hash)["status"] == "0x1"

    def socket(self, chain: int) -> Path:
        return self.bus_dir / f"{chain}.sock"

    def token_key(self) -> bytes:
        return load_key(self.root / "token" / "sequencer.key")


def make_pair(root: Path, nats_server: NatsServerProcess | None = None) -> Pair:
    """The two nodes, not started yet."""
    token_dir, book_dir = render_pair(root / "apps")
    bus_dir = root / "bus"
    bus_dir.mkdir(mode=0o755)  # too open: the node must fix it
    data = {TOKEN_CHAIN: root / "token", BOOK_CHAIN: root / "book"}
    keys = {chain: load_or_create_key(d / "sequencer.key") for chain, d in data.items()}
    sequencers = root / "sequencers.json"
    write_sequencers(sequencers, {chain: key_address(k) for chain, k in keys.items()})

    def args(chain: int) -> list[str]:
        extra = ["--sequencers", str(sequencers)]
        if nats_server is not None:
            extra += ["--bus-credentials", str(nats_server.credentials_path(chain))]
        return extra

    bus = nats_server.url if nats_server is not None else f"unix://{bus_dir}"
    token = NodeProcess(token_dir, data[TOKEN_CHAIN], bus=bus, extra_args=args(TOKEN_CHAIN))
    book = NodeProcess(book_dir, data[BOOK_CHAIN], bus=bus, extra_args=args(BOOK_CHAIN))
    token_app = parse_manifest((token_dir / "rollup.toml").read_text())
    book_app = parse_manifest((book_dir / "rollup.toml").read_text())
    return Pair(root, token, book, token_app, book_app, bus_dir)


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    # Unix socket paths are short (107 bytes): the pytest tmp dir may be too deep for them.
    root = Path(f"/tmp/bus-attacks-{os.getpid()}-{secrets.token_hex(4)}")
    root.mkdir(mode=0o700)
    made = make_pair(root)
    try:
        made.token.start()
        made.book.start()
        yield made
    finally:
        made.book.stop()
        made.token.stop()
        shutil.rmtree(root, ignore_errors=True)


# ---- frames an attacker can make -------------------------------------------------------------


def forged_deposit(
    pair: Pair, owner: bytes, amount: int, number: int = 1, nonce: int = 0
) -> CrossMessage:
    """The message the token app would send for a deposit of `amount` to `owner`."""
    data = selector("receive_tokens(address,uint256)") + encode_values(
        ["address", "uint256"], [owner, amount]
    )
    return CrossMessage(
        TOKEN_CHAIN,
        number,
        0,
        nonce,
        BOOK_CHAIN,
        pair.token_app.address,
        pair.book_app.address,
        CALL,
        0,
        500_000,
        2**63,
        False,
        data,
    )


def forged_block(message: CrossMessage, key: bytes | None) -> BlockMessages:
    """A block of the token chain holding `message`, made up by the attacker; signed with
    `key`, or not at all."""
    leaves = message_leaves([message])
    header = BlockHeader(
        number=message.src_block,
        parent_hash=ZERO_HASH,
        timestamp=0,
        timestamp_ms=0,
        coinbase=message.sender,
        state_root=ZERO_HASH,
        transactions_root=ZERO_HASH,
        receipts_root=ZERO_HASH,
        messages_root=Hash32(merkle_levels(leaves)[-1][0]),
        withdrawals_root=ZERO_HASH,
        logs_bloom=bytes(256),
        gas_limit=1,
        gas_used=0,
        base_fee=0,
        l1_origin=0,
        chain_id=TOKEN_CHAIN,
    )
    signature = sign_header(key, header) if key is not None else bytes(65)
    proof = tuple(merkle_multiproof(merkle_levels(leaves), [0]))
    return BlockMessages(header, signature, 1, (message,), proof, block_hash(header))


async def write_frames(path: Path, frames: list[bytes]) -> None:
    _reader, writer = await asyncio.open_unix_connection(str(path))
    for frame in frames:
        writer.write(len(frame).to_bytes(4, "big") + frame)
    await writer.drain()
    await asyncio.sleep(0.2)
    writer.close()


class Listener:
    """Listens as some chain on the bus directory and keeps every frame it receives."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.frames: list[bytes] = []
        self._writers: list[asyncio.StreamWriter] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._loop = asyncio.new_event_loop()
        self._server = self._loop.run_until_complete(
            asyncio.start_unix_server(self._serve, path=str(path))
        )

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        task = asyncio.current_task()
        assert task is not None
        self._tasks.append(task)
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                size = int.from_bytes(await reader.readexactly(4), "big")
                self.frames.append(await reader.readexactly(size))

    def pump(self, seconds: float) -> None:
        self._loop.run_until_complete(asyncio.sleep(seconds))

    def close(self) -> None:
        self._server.close()
        for writer in self._writers:
            writer.close()
        self._loop.run_until_complete(self._server.wait_closed())
        if self._tasks:
            self._loop.run_until_complete(asyncio.wait(self._tasks, timeout=2.0))
        self._loop.close()
        self.path.unlink(missing_ok=True)


def capture_honest_frame(pair: Pair) -> bytes:
    """An honest MESSAGES frame of the token chain, sent to a chain the attacker plays."""
    listener = Listener(pair.socket(NOBODY))
    try:
        pair.send_to(NOBODY, b"\x42" * 20, ALICE_ADDRESS, 10**18)

        def honest_frame() -> bytes | None:
            listener.pump(0.05)  # the listener's loop runs only while pumped
            return next((f for f in listener.frames if f[1] == MESSAGES), None)

        return wait_for(honest_frame, "a frame at the attacker's socket", DEADLINE, interval=0)
    finally:
        listener.close()


def rejections(node: NodeProcess) -> str:
    return node.log_tail(100_000)


# ---- (a) forged MESSAGES over the Unix socket ------------------------------------------------


def test_forged_messages_are_rejected_and_the_honest_one_still_executes(pair: Pair) -> None:
    attacker = bytes.fromhex(Account.create().address[2:])
    honest = capture_honest_frame(pair)  # token -> NOBODY, signed by the token's sequencer
    captured = decode_frame(honest).blocks[0]
    deposit = forged_deposit(pair, attacker, MILLION)
    real_header_forged_message = replace(
        captured,
        messages=(replace(deposit, src_block=captured.header.number),),
    )  # a real signed header, a message it never committed (its proof is for another leaf)
    frames = [
        messages_frame(TOKEN_CHAIN, BOOK_CHAIN, [forged_block(deposit, None)]),  # unsigned
        messages_frame(
            TOKEN_CHAIN, BOOK_CHAIN, [forged_block(deposit, secrets.token_bytes(32))]
        ),  # another key
        messages_frame(TOKEN_CHAIN, BOOK_CHAIN, [real_header_forged_message]),
        honest,  # replayed to the book: it is for chain NOBODY
    ]
    head = int(rpc(pair.book.url, "eth_blockNumber"), 16)
    asyncio.run(write_frames(pair.socket(BOOK_CHAIN), frames))
    for rule in ("signature", "proof", "destination"):
        logged = f"rejected a bus frame ({rule})"
        wait_for(lambda line=logged: line in rejections(pair.book), logged, DEADLINE)  # type: ignore[misc]
    log = rejections(pair.book)
    assert "is not signed by its sequencer" in log
    assert "are not under the messages root" in log
    assert f"is for chain {NOBODY}, not {BOOK_CHAIN}" in log
    assert pair.book_balance(attacker) == 0
    assert int(rpc(pair.book.url, "eth_blockNumber"), 16) == head  # nothing executed at all

    # The honest deposit uses the nonce the forgeries claimed (0 on token -> book): it runs.
    pair.send_to(BOOK_CHAIN, pair.book_app.address, ALICE_ADDRESS, 5 * 10**18)
    wait_for(lambda: pair.book_balance(ALICE_ADDRESS) == 5 * 10**18, "the honest deposit", DEADLINE)
    assert pair.book_balance(attacker) == 0


# ---- (c) forged PROGRESS -----------------------------------------------------------------------


def test_forged_progress_does_not_make_the_sender_drop_a_message(pair: Pair) -> None:
    pair.book.stop()  # the deposit waits in the token's outbox
    pair.send_to(BOOK_CHAIN, pair.book_app.address, ALICE_ADDRESS, 3 * 10**18)
    book_key = load_key(pair.root / "book" / "sequencer.key")
    forged = [
        progress_frame(secrets.token_bytes(32), BOOK_CHAIN, TOKEN_CHAIN, 1_000),  # unknown key
        progress_frame(pair.token_key(), BOOK_CHAIN, TOKEN_CHAIN, 1_000),  # the token's own key
        progress_frame(book_key, BOOK_CHAIN, NOBODY, 1_000),  # signed, for another channel
    ]
    listener = Listener(pair.socket(BOOK_CHAIN))  # the attacker plays the absent book
    try:
        asyncio.run(write_frames(pair.socket(TOKEN_CHAIN), forged))
        wait_for(
            lambda: "rejected a bus frame (signature)" in rejections(pair.token),
            "the signature rejection",
            DEADLINE,
        )
        wait_for(
            lambda: "rejected a bus frame (destination)" in rejections(pair.token),
            "the destination rejection",
            DEADLINE,
        )
        listener.pump(1.5)  # past the token's once-a-second save of acknowledgements
    finally:
        listener.close()
    pair.book.start()
    wait_for(
        lambda: pair.book_balance(ALICE_ADDRESS) == 3 * 10**18,
        "the deposit from the outbox",
        DEADLINE,
    )


# ---- (d) the socket directory ------------------------------------------------------------------


def test_the_socket_directory_is_private(pair: Pair) -> None:
    assert stat.S_IMODE(pair.bus_dir.stat().st_mode) == 0o700  # it was created 0755
    assert "made it 0700" in pair.token.log_tail(1000) + pair.book.log_tail(1000)


# ---- (b) NATS ----------------------------------------------------------------------------------


@pytest.fixture
def nats_pair(tmp_path: Path) -> Iterator[tuple[Pair, NatsServerProcess]]:
    server = NatsServerProcess(tmp_path / "nats", chains=[TOKEN_CHAIN, BOOK_CHAIN])
    made = make_pair(tmp_path, server)
    try:
        server.start()
        made.token.start()
        made.book.start()
        yield made, server
    finally:
        made.book.stop()
        made.token.stop()
        server.stop()


async def _anonymous_connect(port: int) -> str:
    """What the server answers a client that connects without credentials (raw protocol:
    nats-py leaves its socket open after a refused connection)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        await reader.readline()  # INFO {...}
        writer.write(b'CONNECT {"verbose":false,"pedantic":false}\r\nPING\r\n')
        await writer.drain()
        return (await asyncio.wait_for(reader.readline(), 5.0)).decode()
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def _nats_attacks(server: NatsServerProcess, forged: bytes) -> dict[str, Any]:
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    found: dict[str, Any] = {"anonymous": await _anonymous_connect(server.port)}
    token = server.credentials(TOKEN_CHAIN)
    nc = await nats.connect(
        server.url,
        user=token.user,
        password=token.password,
        inbox_prefix=f"_INBOX_{TOKEN_CHAIN}",
        error_cb=on_error,
    )
    js = nc.jetstream(timeout=1.0)
    try:  # the token's user, sending a frame as if from the book (to the token itself)
        await js.publish(msg_subject(TOKEN_CHAIN, BOOK_CHAIN), forged)
        found["as_other"] = "stored"
    except Exception as exc:  # noqa: BLE001
        found["as_other"] = type(exc).__name__
    await nc.publish(ctl_subject(TOKEN_CHAIN, BOOK_CHAIN), forged)
    await nc.flush()
    await asyncio.sleep(0.3)
    found["errors"] = errors
    await nc.close()
    admin = server.credentials(None)
    ac = await nats.connect(server.url, user=admin.user, password=admin.password)
    found["stored"] = (await ac.jetstream().stream_info("ROLLUP_BUS")).state.messages
    # What the server lets through (here: the admin, who may do anything) still meets the
    # signature check at the node.
    await ac.jetstream().publish(msg_subject(BOOK_CHAIN, TOKEN_CHAIN), forged)
    await ac.close()
    return found


def test_nats_refuses_strangers_and_chains_sending_as_others(
    nats_pair: tuple[Pair, NatsServerProcess],
) -> None:
    pair, server = nats_pair
    attacker = bytes.fromhex(Account.create().address[2:])
    deposit = forged_deposit(pair, attacker, MILLION)
    forged = messages_frame(TOKEN_CHAIN, BOOK_CHAIN, [forged_block(deposit, None)])
    found = asyncio.run(_nats_attacks(server, forged))
    assert "Authorization Violation" in found["anonymous"]
    assert found["stored"] == 0
    assert found["as_other"] == "TimeoutError"  # never stored: no acknowledgement
    assert any(f'publish to "{msg_subject(TOKEN_CHAIN, BOOK_CHAIN)}"' in e for e in found["errors"])
    assert any(f'publish to "{ctl_subject(TOKEN_CHAIN, BOOK_CHAIN)}"' in e for e in found["errors"])
    wait_for(
        lambda: "rejected a bus frame (signature)" in rejections(pair.book),
        "the book's rejection of the admin's forgery",
        DEADLINE,
    )
    assert pair.book_balance(attacker) == 0
    pair.send_to(BOOK_CHAIN, pair.book_app.address, ALICE_ADDRESS, 2 * 10**18)
    wait_for(lambda: pair.book_balance(ALICE_ADDRESS) == 2 * 10**18, "the honest deposit", DEADLINE)


UNKNOWN_CHAIN = 999_999


async def _flood_unknown_destination(server: NatsServerProcess) -> dict[str, Any]:
    """As the token chain's user, publish frames to a chain nobody runs until refused."""
    token = server.credentials(TOKEN_CHAIN)
    nc = await nats.connect(
        server.url, user=token.user, password=token.password, inbox_prefix=f"_INBOX_{TOKEN_CHAIN}"
    )
    js = nc.jetstream(timeout=2.0)
    subject = msg_subject(UNKNOWN_CHAIN, TOKEN_CHAIN)
    stored, refused = 0, ""
    try:
        for i in range(MAX_FRAMES_PER_CHANNEL + 1):
            try:
                await js.publish(subject, i.to_bytes(4, "big"))
                stored += 1
            except Exception as exc:  # noqa: BLE001 - what the server answers is the point
                refused = str(exc)
                break
    finally:
        await nc.close()
    admin = server.credentials(None)
    ac = await nats.connect(server.url, user=admin.user, password=admin.password)
    try:
        config = (await ac.jetstream().stream_info("ROLLUP_BUS")).config
    finally:
        await ac.close()
    return {"stored": stored, "refused": refused, "config": config}


def test_a_chain_cannot_fill_the_stream_with_frames_nobody_reads(tmp_path: Path) -> None:
    server = NatsServerProcess(tmp_path / "nats", chains=[TOKEN_CHAIN, BOOK_CHAIN])
    server.start()
    try:
        found = asyncio.run(_flood_unknown_destination(server))
    finally:
        server.stop()
    assert found["stored"] == MAX_FRAMES_PER_CHANNEL
    assert "maximum messages per subject exceeded" in found["refused"]
    config = found["config"]
    assert config.max_age == MAX_FRAME_AGE_S and config.max_bytes == MAX_STREAM_BYTES
