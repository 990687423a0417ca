"""The message bus of a devnet (`rollup up --bus ...`): which URL the nodes get, and the
`nats-server` the supervisor runs when asked to.

    --bus embedded          (default) Unix sockets in DATA/bus/, nothing to run
    --bus nats              a local `nats-server -js` on a free port, JetStream in DATA/nats/
    --bus nats://HOST:PORT  an external NATS server (JetStream enabled)

Apps find each other by chain id: a node listens on DATA/bus/<chain_id>.sock or consumes
rollup.bus.msg.<chain_id>.*, and an app sends to a chain id (see `rollup status` for the chain
id of each app name).

Who is who: before the nodes start, every app gets its sequencer key (APP_DATA/sequencer.key,
random, mode 0600; the node would create it too, but the supervisor needs its address), and
DATA/bus/sequencers.json lists every chain's sequencer address; each node gets it with
`--sequencers` and accepts messages only from the chains in it, signed by their keys.
DATA/bus is mode 0700. With `--bus nats` the server admits only its users: each node
connects as its chain with DATA/bus/nats-<chain_id>.json (`--bus-credentials`, mode 0600,
see services/bus/nats_server.py). With an external server, put each chain's credentials in
that file before `rollup up` (or give them in the URL, where `ps` shows them); a chain
without the file connects with what the URL says.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TypedDict

from rollup.crypto import key_address
from rollup.errors import RollupError
from services.bus.embedded import EmbeddedTransport, private_directory
from services.bus.nats_server import NatsServerError, NatsServerProcess
from services.bus.transport import BusConfigError
from services.bus.trust import write_sequencers
from services.keys import address_of, load_or_create_key

__all__ = ["BusRecord", "DevnetBus", "add_bus_option", "bus_arguments"]

log = logging.getLogger(__name__)


class BusRecord(TypedDict):
    url: str
    kind: str  # "embedded" | "nats"
    pid: int | None  # the nats-server the supervisor runs, if any
    log: str | None
    sequencers: str  # the sequencers file every node trusts


def add_bus_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--bus",
        default="embedded",
        metavar="embedded|nats|nats://HOST:PORT",
        help="the cross-app message bus (default: embedded)",
    )


def bus_arguments(bus: str) -> list[str]:
    return ["--bus", bus]


class DevnetBus:
    def __init__(self, choice: str, data_dir: Path, logs_dir: Path) -> None:
        if choice not in ("embedded", "nats") and not choice.startswith("nats://"):
            raise BusConfigError(f"--bus {choice!r}: expected embedded, nats or nats://HOST:PORT")
        self.choice, self.data_dir, self.logs_dir = choice, data_dir, logs_dir
        self.bus_dir = data_dir / "bus"
        self.sequencers = self.bus_dir / "sequencers.json"
        self.server: NatsServerProcess | None = None
        self.url = ""

    def start(self, chains: Mapping[int, Path]) -> str:
        """Start the bus for the chains (chain id -> the node's data dir); returns its URL."""
        private_directory(self.bus_dir)
        self._write_sequencers(chains)
        if self.choice == "embedded":
            transport = EmbeddedTransport(self.bus_dir)
            for chain_id in chains:
                transport.socket_path(chain_id)  # a path too long fails here, not in a node
            self.url = f"unix://{transport.directory}"
        elif self.choice == "nats":
            self.server = NatsServerProcess(
                self.data_dir / "nats",
                log_path=self.logs_dir / "nats-server.log",
                chains=list(chains),
                credentials_dir=self.bus_dir,
            )
            self.server.start()
            self.url = self.server.url
            log.info("nats-server (pid %s) at %s, with a user per chain", self.server.pid, self.url)
        else:
            self.url = self.choice
        return self.url

    def _write_sequencers(self, chains: Mapping[int, Path]) -> None:
        addresses: dict[int, bytes] = {}
        for chain_id, data_dir in chains.items():
            try:
                key = load_or_create_key(data_dir / "sequencer.key")
            except (RollupError, OSError) as exc:
                raise BusConfigError(f"sequencer key of chain {chain_id}: {exc}") from None
            addresses[chain_id] = key_address(key)
            log.info("chain %d: sequencer %s", chain_id, address_of(key))
        write_sequencers(self.sequencers, addresses)

    def node_arguments(self, chain_id: int) -> list[str]:
        """What a node of `chain_id` needs to join the bus (no secret on the command line)."""
        args = ["--bus", self.url, "--sequencers", str(self.sequencers)]
        credentials = self.bus_dir / f"nats-{chain_id}.json"
        if self.url.startswith(("nats:", "tls:")) and credentials.exists():
            args += ["--bus-credentials", str(credentials)]
        return args

    def check(self) -> bool:
        """Restart our nats-server on its port if it died; True if it did."""
        server = self.server
        if server is None or server.running():
            return False
        log.warning(
            "nats-server exited; restarting it on port %d (log: %s)", server.port, server.log_path
        )
        server.stop()
        try:
            server.start()
        except NatsServerError as exc:
            log.error("nats-server did not restart: %s", exc)
        return True

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    def record(self) -> BusRecord:
        server = self.server
        return {
            "url": self.url,
            "kind": "embedded" if self.url.startswith("unix:") else "nats",
            "pid": server.pid if server is not None else None,
            "log": str(server.log_path) if server is not None else None,
            "sequencers": str(self.sequencers),
        }
