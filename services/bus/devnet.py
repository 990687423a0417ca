"""The message bus of a devnet (`rollup up --bus ...`): which URL the nodes get, and the
`nats-server` the supervisor runs when asked to.

    --bus embedded          (default) Unix sockets in DATA/bus/, nothing to run
    --bus nats              a local `nats-server -js` on a free port, JetStream in DATA/nats/
    --bus nats://HOST:PORT  an external NATS server (JetStream enabled)

Apps find each other by chain id: a node listens on DATA/bus/<chain_id>.sock or consumes
rollup.bus.msg.<chain_id>, and an app sends to a chain id (see `rollup status` for the chain
id of each app name).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TypedDict

from services.bus.embedded import EmbeddedTransport
from services.bus.nats_server import NatsServerError, NatsServerProcess
from services.bus.transport import BusConfigError

__all__ = ["BusRecord", "DevnetBus", "add_bus_option", "bus_arguments"]

log = logging.getLogger("devnet.bus")


class BusRecord(TypedDict):
    url: str
    kind: str  # "embedded" | "nats"
    pid: int | None  # the nats-server the supervisor runs, if any
    log: str | None


def add_bus_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bus", default="embedded", metavar="embedded|nats|nats://HOST:PORT",
                        help="the cross-app message bus (default: embedded)")  # fmt: skip


def bus_arguments(bus: str) -> list[str]:
    return ["--bus", bus]


class DevnetBus:
    def __init__(self, choice: str, data_dir: Path, logs_dir: Path) -> None:
        if choice not in ("embedded", "nats") and not choice.startswith("nats://"):
            raise BusConfigError(f"--bus {choice!r}: expected embedded, nats or nats://HOST:PORT")
        self.choice, self.data_dir, self.logs_dir = choice, data_dir, logs_dir
        self.server: NatsServerProcess | None = None
        self.url = ""

    def start(self, chain_ids: list[int]) -> str:
        if self.choice == "embedded":
            transport = EmbeddedTransport(self.data_dir / "bus")
            for chain_id in chain_ids:
                transport.socket_path(chain_id)  # a path too long fails here, not in a node
            self.url = f"unix://{transport.directory}"
        elif self.choice == "nats":
            self.server = NatsServerProcess(self.data_dir / "nats",
                                            log_path=self.logs_dir / "nats-server.log")  # fmt: skip
            self.server.start()
            self.url = self.server.url
            log.info("nats-server (pid %s) at %s", self.server.pid, self.url)
        else:
            self.url = self.choice
        return self.url

    def check(self) -> bool:
        """Restart our nats-server on its port if it died; True if it did."""
        server = self.server
        if server is None or server.running():
            return False
        log.warning("nats-server exited; restarting it on port %d (log: %s)",
                    server.port, server.log_path)  # fmt: skip
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
        }
