"""The admin_ namespace: the operator's controls of one node, for the admin service
(services/admin/) and nobody else.

Another local process can reach the node's port, and local processes are trusted with nothing
(SECURITY.md), so every admin method takes the node's admin token as its first parameter and
answers `Unauthorized` without it; the token is the one in the file `$ROLLUP_ADMIN_TOKEN_FILE`
names (services/settings.py: `node_admin_token_file`), read once, compared in constant time.
Without that file the methods are disabled. They are private too: a page of another origin
cannot call them (services/rpc/server.py).

    admin_status(token)          {paused, head, safe, finalized, pending, queued, ...}
    admin_pauseSequencer(token)  refuse new transactions, build no blocks; keep the pool
    admin_resumeSequencer(token) build again from the newest block
    admin_dropTransaction(token, hash)  {dropped: [hash, ...]}: the pooled transaction and its
                                 sender's later nonces (waiters hear TxDropped); ResourceNotFound
                                 (-32001) when the pool does not hold it
    admin_pauseDA(token)         the DA poster posts nothing (no batch, no heartbeat's
                                 commitment) until resumed; blocks go on. {paused, settled,
                                 posted, head}: `settled` false when a posting cycle in flight
                                 had not ended after 30 s (it is the last). ResourceNotFound when
                                 the node runs no poster. A worker thread: it waits for that cycle
    admin_resumeDA(token)        post again, from where the L1 inbox says it stopped
    admin_upgrades(token)        {app, owner, codeHash, source, pending: [{app, height,
                                 codeHash, source}]}: the native app's code and its scheduled
                                 upgrades (vm/native/upgrades.py); codeHash and source null and
                                 `pending` empty for an EVM app
`admin_status` also says `da_paused` (null without a poster).
"""

from __future__ import annotations

import functools
import hmac
import time
from typing import Any

from rollup import rlp
from rollup.crypto import keccak
from rollup.errors import InvalidParams, ResourceNotFound, Unauthorized
from sequencer.node import Sequencer
from services.admin.tokens import MAX_TOKEN_CHARS, read_token
from services.da_node import DAService, da_service_of
from services.rpc import codec
from services.rpc.registry import Method, method
from vm.native.upgrades import owner_key, pending_upgrades, source_key

__all__ = ["METHODS", "RATE_WINDOW_S"]

RATE_WINDOW_S = 10.0  # recent transactions per second: over this many seconds of blocks
RATE_MAX_BLOCKS = 256  # ... and at most this many blocks back


@functools.cache
def expected_token() -> str | None:
    """The node's admin token, read once; None when no file is named."""
    # imported here: services.settings imports the RPC server, which imports this module
    from services.settings import node_admin_token_file

    path = node_admin_token_file()
    return None if path is None else read_token(path)


def parse_token(value: Any) -> str:
    if not isinstance(value, str) or len(value) > MAX_TOKEN_CHARS:
        raise InvalidParams("invalid argument 0: the admin token must be a string")
    return value


def authorize(token: str) -> None:
    expected = expected_token()
    if expected is None:
        raise Unauthorized("admin methods are disabled: the node has no admin token file")
    if not hmac.compare_digest(token.encode(), expected.encode()):
        raise Unauthorized("wrong admin token")


def status(node: Sequencer, token: str) -> dict[str, Any]:
    authorize(token)
    return _status(node)


def pause(node: Sequencer, token: str) -> dict[str, Any]:
    authorize(token)
    node.pause()
    return _status(node)


def resume(node: Sequencer, token: str) -> dict[str, Any]:
    authorize(token)
    node.resume()
    return _status(node)


def drop_transaction(node: Sequencer, token: str, tx_hash: bytes) -> dict[str, Any]:
    authorize(token)
    dropped = node.drop_transaction(tx_hash)
    if not dropped:
        raise ResourceNotFound(f"the pool holds no transaction {codec.data(tx_hash)}")
    return {"dropped": [codec.data(tx.hash) for tx in dropped]}


def pause_da(node: Sequencer, token: str) -> dict[str, Any]:
    authorize(token)
    service = _da_service(node)
    settled = service.pause()
    return _da_status(node, service) | {"settled": settled}


def resume_da(node: Sequencer, token: str) -> dict[str, Any]:
    authorize(token)
    service = _da_service(node)
    service.resume()
    return _da_status(node, service) | {"settled": True}


def _da_service(node: Sequencer) -> DAService:
    service = da_service_of(node)
    if service is None:
        raise ResourceNotFound("this node runs no DA poster (started without --da)")
    return service


def _da_status(node: Sequencer, service: DAService) -> dict[str, Any]:
    return {"paused": service.paused, "posted": node.safe_head, "head": node.committed.number}


def upgrades(node: Sequencer, token: str) -> dict[str, Any]:
    authorize(token)
    state = node.state_at(node.committed.number)
    app = node.manifest.address
    source = state.get(source_key(app))
    owner = state.get(owner_key(app))
    return {
        "app": codec.data(app),
        "owner": None if owner is None else codec.data(owner),
        "codeHash": None if source is None else codec.data(keccak(source)),
        "source": None if source is None else source.decode("utf-8", errors="replace"),
        "pending": [_pending_json(item) for item in pending_upgrades(state)],
    }


def _pending_json(item: list[bytes]) -> dict[str, Any]:
    app, height, source = item
    return {
        "app": codec.data(app),
        "height": rlp.decode_int(height),
        "codeHash": codec.data(keccak(source)),
        "source": source.decode("utf-8", errors="replace"),
    }


def _status(node: Sequencer) -> dict[str, Any]:
    head = node.committed.number
    service = da_service_of(node)
    return {
        "paused": node.paused,
        "head": head,
        "safe": node.safe_head,
        "finalized": node.finalized_head,
        "pending": node.mempool.ready_count,
        "queued": node.mempool.queued_count,
        "da_backlog_blocks": None if node.safe_head is None else max(head - node.safe_head, 0),
        "tx_per_second": _recent_rate(node),
        "da_paused": None if service is None else service.paused,
    }


def _recent_rate(node: Sequencer) -> float:
    """Transactions per second in the blocks of the last RATE_WINDOW_S seconds."""
    since_ms = time.time_ns() // 1_000_000 - int(RATE_WINDOW_S * 1000)
    count, number = 0, node.committed.number
    for _ in range(RATE_MAX_BLOCKS):
        block = node.block(number)
        if block is None or block.header.timestamp_ms < since_ms:
            break
        count += len(block.transactions)
        number -= 1
    return round(count / RATE_WINDOW_S, 3)


METHODS: dict[str, Method] = {
    "admin_status": method(status, parse_token, private=True),
    "admin_pauseSequencer": method(pause, parse_token, private=True),
    "admin_resumeSequencer": method(resume, parse_token, private=True),
    "admin_dropTransaction": method(drop_transaction, parse_token, codec.parse_hash, private=True),
    "admin_pauseDA": method(pause_da, parse_token, private=True, runs="thread"),
    "admin_resumeDA": method(resume_da, parse_token, private=True),
    "admin_upgrades": method(upgrades, parse_token, private=True),
}
