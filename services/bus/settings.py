"""A node's bus settings: where the bus is, who this node is on it, and whom it believes.

    --bus URL                unix:///DIR or nats://HOST:PORT (none: no cross-app messages)
    --sequencers FILE        the chains whose messages this node accepts, with their sequencer
                             addresses (services/bus/trust.py); without it, none
    --bus-credentials FILE   NATS only: {"user": ..., "password": ...}, mode 0600
                             (services/bus/nats_auth.py)

The node signs as its sequencer with DATA_DIR/sequencer.key (services/keys.py: random, mode
0600, created on first start); logs show its address, never the key.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from services.bus.nats_auth import NatsCredentials, load_credentials
from services.bus.transport import BusConfigError, open_transport
from services.bus.trust import SequencerTrust, StaticTrust, TrustFile
from services.keys import address_of, load_or_create_key

if TYPE_CHECKING:
    from collections.abc import Callable

    from sequencer.node import Sequencer
    from services.bus.service import BusService

__all__ = ["BusSettings", "add_bus_arguments", "bus_settings", "SEQUENCER_KEY"]

log = logging.getLogger("bus")

SEQUENCER_KEY = "sequencer.key"


@dataclass(frozen=True)
class BusSettings:
    url: str
    key: bytes = field(repr=False)
    trust: SequencerTrust
    credentials: NatsCredentials | None = None

    def service(self, node: Sequencer, wake: Callable[[], None]) -> BusService:
        from services.bus.service import BusService

        transport = open_transport(self.url, self.credentials)
        return BusService(node, transport, self.key, self.trust, wake)


def add_bus_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bus", default=None,
                        help="message bus URL: unix:///DIR or nats://HOST:PORT "
                             "(default: none, no cross-app messages)")  # fmt: skip
    parser.add_argument("--sequencers", type=Path, default=None, metavar="FILE",
                        help='JSON {"<chain_id>": "0x<sequencer address>"}: the chains whose '
                             "messages this node accepts (default: none)")  # fmt: skip
    parser.add_argument("--bus-credentials", type=Path, default=None, metavar="FILE",
                        help='NATS user of this chain: JSON {"user": ..., "password": ...}, '
                             "mode 0600")  # fmt: skip


def bus_settings(args: argparse.Namespace, data_dir: Path) -> BusSettings | None:
    """None without --bus; raises BusConfigError or KeyFileError (RollupErrors)."""
    if not args.bus:
        if args.sequencers or args.bus_credentials:
            raise BusConfigError("--sequencers and --bus-credentials need --bus")
        return None
    key = load_or_create_key(data_dir / SEQUENCER_KEY)
    log.info("sequencer key %s: address %s", data_dir / SEQUENCER_KEY, address_of(key))
    trust: SequencerTrust
    if args.sequencers is None:
        log.warning("no --sequencers: this node accepts no cross-app messages")
        trust = StaticTrust({})
    else:
        trust = TrustFile(args.sequencers)
    credentials = load_credentials(args.bus_credentials) if args.bus_credentials else None
    return BusSettings(args.bus, key, trust, credentials)
