"""The DA poster inside a node process: `python -m services.node ... --da local|ethereum`.

Why a thread in the node rather than a process of its own: admission consults the backlog on
every transaction (back-pressure) and the JSON-RPC `safe`/`finalized` tags read the poster's
heads on every request, both as plain attribute reads here; the poster takes committed blocks
as the objects the node already holds (no second decode from the database); and the devnet
supervisor restarts it with the node, from the poster's own record and the L1. Its cost on
the node's GIL is the batch encoding (~10 us a transaction); compression, fsyncs and L1
round trips release the GIL.

    DATA/da/                 the local backend's store (objects + index), read by verifiers
    DATA/da-poster.sqlite    the poster's record of its commitments and finalized head
The operator may pause the poster (`DAService.pause`, the node's admin_pauseDA): it then posts
nothing, neither batches nor the heartbeat blocks' commitments, while blocks keep being made;
`resume` goes on from the L1 inbox's position, where it stopped. The pause is not recorded: a
restarted node posts again. While paused the backlog grows and admission refuses new
transactions once it passes its bounds (`Backlog`). The admin methods find a node's service
with `da_service_of` (each `DAService` registers itself on its node when built).
Its settings are the [da] section of the one settings model (services/settings.py: flags,
the environment the devnet sets, rollup.toml) and the L1's URL, [l1] rpc. The batcher's key
is named by its key file (--batcher-key-file: mode 0600, services/keys.py), never given
itself on a command line or in the environment, where other processes could read it; only
its address is logged.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bridge.inbox import BatchInbox
from bridge.l1 import L1Client
from da.backend import DABackend
from da.ethereum import EthereumDA
from da.local import LocalDA
from da.poster import Backlog, Poster, PosterConfig, PosterStore
from rollup.errors import ConfigError, RollupError
from rollup.types import Block
from sequencer.node import Sequencer
from services.keys import address_of, load_key
from services.metrics import POST_BUCKETS, Durations

if TYPE_CHECKING:
    from services.settings import DABackendName, DAMode, Settings

__all__ = [
    "DASettings",
    "DAService",
    "PausablePoster",
    "da_service_of",
    "da_settings",
    "open_backend",
    "register_da_service",
]

log = logging.getLogger(__name__)

PAUSE_WAIT_S = 30.0  # how long `pause` waits for a posting cycle in flight to end

# each node's DA service, for the admin methods (which get the node only)
_SERVICES: weakref.WeakKeyDictionary[Sequencer, DAService] = weakref.WeakKeyDictionary()


def register_da_service(node: Sequencer, service: DAService) -> None:
    _SERVICES[node] = service


def da_service_of(node: Sequencer) -> DAService | None:
    """The DA service of `node`, None when it posts nothing."""
    return _SERVICES.get(node)


@dataclass(frozen=True, slots=True)
class DASettings:
    backend: DABackendName
    l1_rpc: str
    inbox: bytes
    batcher_key_file: Path
    data_dir: Path
    mode: DAMode = "calldata"
    inbox_from_l1_block: int = 0
    poster: PosterConfig = field(default_factory=PosterConfig)


def da_settings(settings: Settings, data_dir: Path) -> DASettings | None:
    """The poster's settings ([da] and [l1] rpc of the settings model); None without --da."""
    da = settings.da
    if da.backend is None:
        return None
    if os.environ.get("ROLLUP_BATCHER_KEY"):
        raise ConfigError(
            "$ROLLUP_BATCHER_KEY is not read: keep the batcher's key in a file "
            "of mode 0600 and name it with --batcher-key-file"
        )
    l1_rpc, inbox, key_file = settings.l1.rpc, da.inbox, da.batcher_key_file
    missing = [
        name
        for name, value in (
            ("--l1-rpc", l1_rpc),
            ("--inbox", inbox),
            ("--batcher-key-file", key_file),
        )
        if not value
    ]
    if missing:
        raise ConfigError(f"--da {da.backend} needs {', '.join(missing)}")
    assert l1_rpc and inbox and key_file  # (for mypy: checked just above)
    load_key(key_file)  # refuse a missing, malformed or readable-by-others file at start
    config = PosterConfig(
        max_delay_s=da.max_delay,
        max_backlog_blocks=da.max_backlog_blocks,
        max_backlog_txs=da.max_backlog_txs,
        retry_max_s=da.retry_max,
    )
    return DASettings(
        da.backend, l1_rpc, inbox, key_file, data_dir, da.mode, da.inbox_from_block, config
    )


def open_backend(
    name: DABackendName, chain_id: int, l1: L1Client, data_dir: Path, mode: DAMode = "calldata"
) -> DABackend:
    """The DA backend `name`: `local` in DATA/da, `ethereum` through `l1`."""
    if name == "local":
        return LocalDA(data_dir / "da")
    if name == "ethereum":
        return EthereumDA(l1, chain_id, mode)
    raise ConfigError(f"unknown DA backend {name!r}, one of local, ethereum")


class _NodeBlocks:
    """The poster's `BlockSource`: committed blocks of the node. Called from the poster's
    thread: `Sequencer.block` reads a dict (atomic) or the store (its engine is thread-safe)."""

    def __init__(self, node: Sequencer) -> None:
        self.node = node

    def committed_number(self) -> int:
        return self.node.committed.number

    def block(self, number: int) -> Block:
        block = self.node.block(number)
        if block is None:
            raise RollupError(f"block {number} is not committed")
        return block


class _NodeChain:
    """The back-pressure gate's `ChainView` (the node's owner thread)."""

    def __init__(self, node: Sequencer) -> None:
        self.node = node

    def committed_number(self) -> int:
        return self.node.committed.number

    def tx_count(self, number: int) -> int:
        block = self.node.block(number)
        return 0 if block is None else len(block.transactions)


class PausablePoster(Poster):
    """A poster the operator can pause: while paused its cycles do nothing (no batch, no
    finality reads); resumed, the next cycle reads the inbox's position and goes on."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._paused = threading.Event()
        self._cycle = threading.Lock()  # held by a cycle: `pause` waits for the one in flight

    @property
    def paused(self) -> bool:
        return self._paused.is_set()

    def step(self) -> bool:
        with self._cycle:
            if self._paused.is_set():
                return False
            return super().step()

    def pause(self, wait_s: float = PAUSE_WAIT_S) -> bool:
        """Stop posting; True once no cycle is in flight (False: one still runs after
        `wait_s`, and it is the last)."""
        self._paused.set()
        if not self._cycle.acquire(timeout=wait_s):
            return False
        self._cycle.release()
        return True

    def resume(self) -> None:
        self._paused.clear()


class DAService:
    """The poster thread of one node, its back-pressure gate, and the heads it publishes."""

    def __init__(self, node: Sequencer, settings: DASettings) -> None:
        self.node, self.settings = node, settings
        key = load_key(settings.batcher_key_file)
        self.l1 = L1Client(settings.l1_rpc, "0x" + key.hex())
        log.info("DA poster: batcher 0x%s, inbox 0x%s", address_of(key)[2:], settings.inbox.hex())
        self.backend = open_backend(
            settings.backend, node.chain_id, self.l1, settings.data_dir, settings.mode
        )
        self.store = PosterStore(settings.data_dir / "da-poster.sqlite")
        node.posted = self.store  # withdrawal proofs name the output root that covers them
        config = settings.poster
        self.poster = PausablePoster(
            node.chain_id,
            _NodeBlocks(node),
            self.backend,
            BatchInbox(self.l1, settings.inbox),
            self.store,
            config,
            self._publish,
            settings.inbox_from_l1_block,
        )
        self.backlog = Backlog(
            _NodeChain(node),
            lambda: self.poster.status.safe,
            config.max_backlog_blocks,
            config.max_backlog_txs,
        )
        self.post_seconds = Durations(POST_BUCKETS)  # written by the poster's thread only
        self.poster.on_posted = self.post_seconds.observe
        register_da_service(node, self)

    @property
    def paused(self) -> bool:
        return self.poster.paused

    def pause(self) -> bool:
        """Post nothing more (see the module docstring); False if a cycle in flight did not
        end within PAUSE_WAIT_S (it is the last one)."""
        if not self.poster.paused:
            log.warning("DA poster of chain %d paused by the operator", self.node.chain_id)
        return self.poster.pause()

    def resume(self) -> None:
        if self.poster.paused:
            log.warning("DA poster of chain %d resumed by the operator", self.node.chain_id)
        self.poster.resume()

    def _publish(self, safe: int, finalized: int) -> None:
        self.node.safe_head, self.node.finalized_head = safe, finalized

    def start(self) -> None:
        self.poster.start()

    def stop(self) -> None:
        self.poster.stop()
        self.store.close()
        if isinstance(self.backend, LocalDA):
            self.backend.close()
