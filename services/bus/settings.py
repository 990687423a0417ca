"""A node's bus settings: where the bus is, who this node is on it, and whom it believes.

From the [bus] section of the one settings model (services/settings.py):

    --bus URL                unix:///DIR or nats://HOST:PORT (none: no cross-app messages)
    --sequencers FILE        the chains whose messages this node accepts, with their sequencer
                             addresses (services/bus/trust.py); without it, none
    --bus-credentials FILE   NATS only: {"user": ..., "password": ...}, mode 0600
                             (services/bus/nats_auth.py)

The node signs as its sequencer with DATA_DIR/sequencer.key (services/keys.py: random, mode
0600, created on first start); logs show its address, never the key.
"""

from __future__ import annotations

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
    from services.settings import BusSection

__all__ = ["BusSettings", "bus_settings", "SEQUENCER_KEY"]

log = logging.getLogger(__name__)

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


def bus_settings(bus: BusSection, data_dir: Path) -> BusSettings | None:
    """None without --bus; raises BusConfigError or KeyFileError (ConfigErrors)."""
    if not bus.url:
        if bus.sequencers or bus.credentials:
            raise BusConfigError("--sequencers and --bus-credentials need --bus")
        return None
    key = load_or_create_key(data_dir / SEQUENCER_KEY)
    log.info("sequencer key %s: address %s", data_dir / SEQUENCER_KEY, address_of(key))
    trust: SequencerTrust
    if bus.sequencers is None:
        log.warning("no --sequencers: this node accepts no cross-app messages")
        trust = StaticTrust({})
    else:
        trust = TrustFile(bus.sequencers)
    credentials = load_credentials(bus.credentials) if bus.credentials else None
    return BusSettings(bus.url, key, trust, credentials)
