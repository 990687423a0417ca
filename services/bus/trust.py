"""Whom a node believes: the sequencer address of every chain it takes messages from.

    sequencers file = JSON {"<chain_id>": "0x<address>", ...}         (`--sequencers FILE`)

A frame from another chain counts only if that chain is listed and its sequencer signed what
the frame carries (`FrameAuthenticator`): the header of every source block in a MESSAGES frame
(the messages are tied to it by their Merkle proofs, services/bus/wire.py), and every HELLO
and PROGRESS. A chain that is not listed is refused: no file, no messages.

The lookup goes through `SequencerTrust`, one method. `TrustFile` is the configuration one;
a registry of sequencer keys on the L1 (many hosts, keys that rotate) would be another
implementation, read through the L1 client, with nothing above it changing. The file is read
again when it changes (looked at no more than once a second), so adding a chain to a running
fleet needs no restart; verified headers are forgotten when any address changes.
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
from pathlib import Path
from typing import Protocol

from rollup.blocks import header_signer
from rollup.crypto import recover_signer
from rollup.messages import MAX_CHAIN_ID
from services.bus.transport import BusConfigError
from services.bus.wire import MESSAGES, Frame, FrameRejected, control_digest

__all__ = [
    "SequencerTrust",
    "TrustFile",
    "StaticTrust",
    "FrameAuthenticator",
    "parse_sequencers",
    "write_sequencers",
]

log = logging.getLogger(__name__)

RELOAD_EVERY = 1.0  # seconds between looks at the file
HEADER_CACHE = 4096  # verified (chain, block hash) pairs kept


class SequencerTrust(Protocol):
    def address(self, chain_id: int) -> bytes | None:
        """The address whose signatures speak for `chain_id`; None: the chain is unknown."""
        ...

    @property
    def generation(self) -> int:
        """Changes whenever some address changed (cached verifications become void)."""
        ...


class StaticTrust:
    """A fixed table (tests, and the in-process harnesses)."""

    def __init__(self, addresses: dict[int, bytes]) -> None:
        self.addresses = dict(addresses)
        self.generation = 0

    def address(self, chain_id: int) -> bytes | None:
        return self.addresses.get(chain_id)


def parse_sequencers(text: str, origin: str = "sequencers file") -> dict[int, bytes]:
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise BusConfigError(f"{origin} is not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise BusConfigError(f'{origin}: expected {{"<chain_id>": "0x<address>", ...}}')
    table: dict[int, bytes] = {}
    for key, value in raw.items():
        if not (isinstance(key, str) and key.isdigit() and 1 <= int(key) <= MAX_CHAIN_ID):
            raise BusConfigError(f"{origin}: {key!r} is not a chain id")
        digits = value[2:] if isinstance(value, str) and value[:2] in ("0x", "0X") else ""
        try:
            address = bytes.fromhex(digits)
        except ValueError:
            address = b""
        if len(address) != 20:
            raise BusConfigError(f"{origin}: chain {key}: {value!r} is not a 0x address")
        table[int(key)] = address
    return table


def write_sequencers(path: Path, addresses: dict[int, bytes]) -> None:
    """Write the table (public data: addresses only) atomically."""
    text = json.dumps({str(c): "0x" + a.hex() for c, a in sorted(addresses.items())}, indent=1)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text + "\n")
    tmp.replace(path)


class TrustFile:
    """`SequencerTrust` from a sequencers file, re-read when it changes."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.generation = 0
        self._stamp: tuple[int, int] | None = None
        self._looked = 0.0
        self.addresses: dict[int, bytes] = {}
        try:
            self._load()
        except OSError as exc:
            raise BusConfigError(f"cannot read the sequencers file {self.path}: {exc}") from None

    def address(self, chain_id: int) -> bytes | None:
        now = time.monotonic()
        if now - self._looked >= RELOAD_EVERY:
            self._looked = now
            self._reload()
        return self.addresses.get(chain_id)

    def _load(self) -> None:
        stat = self.path.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp == self._stamp:
            return
        table = parse_sequencers(self.path.read_text(), str(self.path))
        self._stamp = stamp
        if table != self.addresses:
            self.addresses = table
            self.generation += 1
            log.info(
                "trusting the sequencers of %d chain(s) from %s: %s",
                len(table),
                self.path,
                ", ".join(f"{c}=0x{a.hex()}" for c, a in sorted(table.items())),
            )

    def _reload(self) -> None:
        try:
            self._load()
        except (OSError, BusConfigError) as exc:  # keep what we had: a half-written file, say
            log.warning("keeping the previous sequencers: %s", exc)


class FrameAuthenticator:
    """Checks that the chain a frame comes from signed it; remembers verified block headers,
    so one signature check serves every frame with messages of that block."""

    def __init__(self, trust: SequencerTrust, cache_size: int = HEADER_CACHE) -> None:
        self.trust = trust
        self.cache_size = cache_size
        self._verified: OrderedDict[tuple[int, bytes], None] = OrderedDict()
        self._generation = trust.generation

    def check(self, frame: Frame) -> None:
        """Raise FrameRejected unless `frame.chain` is trusted and signed the frame."""
        address = self.trust.address(frame.chain)
        if address is None:
            raise FrameRejected(
                "unknown-chain",
                f"bus frame from chain {frame.chain}, which is not among the trusted sequencers",
            )
        if self.trust.generation != self._generation:
            self._generation = self.trust.generation
            self._verified.clear()
        if frame.kind == MESSAGES:
            for block in frame.blocks:
                self._check_header(frame.chain, block.hash, block.signature, address)
            return
        digest = control_digest(frame.kind, frame.chain, frame.dst, frame.next_nonce)
        if recover_signer(digest, frame.signature) != address:
            raise FrameRejected(
                "signature", f"bus frame from chain {frame.chain} is not signed by its sequencer"
            )

    def _check_header(self, chain: int, hash_: bytes, signature: bytes, address: bytes) -> None:
        key = (chain, hash_)
        if key in self._verified:
            self._verified.move_to_end(key)
            return
        if header_signer(chain, hash_, signature) != address:
            raise FrameRejected(
                "signature",
                f"bus frame block 0x{hash_.hex()} of chain {chain} is not signed by its sequencer",
            )
        self._verified[key] = None
        if len(self._verified) > self.cache_size:
            self._verified.popitem(last=False)
