"""The port between the bus service and the wire: `BusTransport`, and the one place that picks
an adapter from configuration (`open_transport`).

    unix:///path/to/dir    EmbeddedTransport: a Unix socket per chain, DIR/<chain_id>.sock
    nats://host:port       NatsTransport: JetStream for messages, core NATS for control frames

A transport moves opaque frames (services/bus/wire.py) and promises nothing about delivery:
frames may be lost, repeated or reordered. Exactly-once execution comes from the channel
nonces in the receiving chain's state and the sender's durable outbox, above this interface.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlparse

from rollup.errors import ConfigError

if TYPE_CHECKING:
    from services.bus.nats_auth import NatsCredentials

__all__ = ["BusTransport", "Deliver", "Connected", "open_transport", "BusConfigError"]

# Called with each arriving frame; for a MESSAGES frame it returns (source chain, last nonce)
# so a durable transport can acknowledge it once `settled` says it is executed; None otherwise
# (the frame is done with, or was rejected).
Deliver = Callable[[bytes], "tuple[int, int] | None"]
Connected = Callable[[int], None]  # a (re)connection towards a chain: ask it for its progress


class BusConfigError(ConfigError, ValueError):
    """Bus settings this node cannot use (a URL, a sequencers or credentials file)."""


class BusTransport(Protocol):
    async def start(self, chain_id: int, deliver: Deliver, connected: Connected) -> None:
        """Start receiving frames for `chain_id`."""
        ...

    def send(self, dst_chain: int, frame: bytes, durable: bool) -> None:
        """Queue a frame for `dst_chain`; never blocks. `durable` frames carry messages (a
        transport with storage keeps them while the receiver is away); control frames do not
        need to survive anything."""
        ...

    def settled(self, src_chain: int, next_nonce: int) -> None:
        """The chain has committed everything from `src_chain` below `next_nonce`."""
        ...

    async def close(self) -> None: ...


def open_transport(url: str, credentials: NatsCredentials | None = None) -> BusTransport:
    """The transport of `url`; `credentials` (NATS only) say who this node is to the server."""
    parsed = urlparse(url)
    if parsed.scheme == "unix":
        from services.bus.embedded import EmbeddedTransport

        if credentials is not None:
            raise BusConfigError("bus credentials are for NATS; a unix:// bus takes none")
        path = parsed.path if not parsed.netloc else parsed.netloc + parsed.path
        if not path:
            raise BusConfigError(f"bus URL {url!r} names no directory (unix:///path/to/dir)")
        return EmbeddedTransport(Path(path))
    if parsed.scheme in ("nats", "tls"):
        from services.bus.nats import NatsTransport

        return NatsTransport(url, credentials)
    raise BusConfigError(f"bus URL {url!r}: expected unix:///DIR or nats://HOST:PORT")
