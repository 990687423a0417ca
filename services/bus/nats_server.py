"""Start and stop a local `nats-server` with JetStream (Debian's package) on loopback, by PID.

Used by `rollup up --bus nats`, the bus tests and `rollup bench bus`. JetStream keeps its
files in `store_dir`, so a server restarted on the same directory and port finds its streams
and consumers again.

The server admits only its users (services/bus/nats_auth.py): one per chain of `chains`, with
that chain's permissions, and an admin that creates the stream and the consumers once the
server is up. Each user's random password is in `credentials_dir/nats-<chain_id>.json` (and
nats-admin.json), mode 0600, kept across restarts; the server's configuration, which holds
them too, is `store_dir/nats-server.conf`, mode 0600. Both directories are 0700.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

from rollup.errors import ProcessError
from services.bus.embedded import private_directory
from services.bus.nats_auth import (
    ADMIN_USER,
    NatsCredentials,
    chain_permissions,
    chain_user,
    load_or_create_credentials,
)
from services.bus.wire import MAX_FRAME
from services.process import ManagedProcess, accepts_tcp, free_port

__all__ = ["NatsServerProcess", "NatsServerError", "find_nats_server"]

MAX_PAYLOAD = MAX_FRAME + 64 * 1024  # the default (1 MB) is smaller than a bus frame may be

START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0


class NatsServerError(ProcessError):
    """nats-server is missing, would not start, or stopped answering."""


def find_nats_server() -> Path:
    found = shutil.which("nats-server") or shutil.which("nats-server", path="/usr/sbin:/usr/bin")
    if found is None:
        raise NatsServerError("nats-server is not installed (Debian: apt-get install nats-server)")
    return Path(found)


class NatsServerProcess(ManagedProcess):
    """The server as a `ManagedProcess` (services/process.py): ready once its log says so and
    it accepts connections; `start()` writes its configuration first and creates the stream
    and consumers after."""

    def __init__(
        self,
        store_dir: Path,
        port: int | None = None,
        log_path: Path | None = None,
        chains: Sequence[int] = (),
        credentials_dir: Path | None = None,
    ) -> None:
        self.store_dir = Path(store_dir)
        self.port = port or free_port()
        self.chains = list(chains)
        self.credentials_dir = Path(credentials_dir or self.store_dir / "credentials")
        self.config_path = self.store_dir / "nats-server.conf"
        ready = accepts_tcp(self.port)
        super().__init__(
            "nats-server",
            [],
            log_path or self.store_dir / "nats-server.log",
            ready=lambda: "Server is ready" in self.log_tail(50) and ready(),
            error=NatsServerError,
            start_timeout=START_TIMEOUT,
            stop_timeout=STOP_TIMEOUT,
        )

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def credentials_path(self, chain_id: int | None) -> Path:
        """The credentials file of chain `chain_id`'s user, or of the admin (None)."""
        name = "admin" if chain_id is None else str(chain_id)
        return self.credentials_dir / f"nats-{name}.json"

    def credentials(self, chain_id: int | None) -> NatsCredentials:
        user = ADMIN_USER if chain_id is None else chain_user(chain_id)
        return load_or_create_credentials(self.credentials_path(chain_id), user)

    def start(
        self, timeout: float | None = None, interrupted: Callable[[], bool] | None = None
    ) -> None:
        private_directory(self.store_dir)
        private_directory(self.credentials_dir)
        self._write_config()
        self.command = [str(find_nats_server()), "-c", str(self.config_path)]
        super().start(timeout, interrupted)  # stops the server if it does not become ready
        self._provision()

    def _write_config(self) -> None:
        admin = self.credentials(None)
        users: list[dict[str, object]] = [{"user": admin.user, "password": admin.password}]
        for chain_id in self.chains:
            creds = self.credentials(chain_id)
            permissions = chain_permissions(chain_id)
            users.append(
                {
                    "user": creds.user,
                    "password": creds.password,
                    "permissions": {
                        "publish": {"allow": permissions["publish"]},
                        "subscribe": {"allow": permissions["subscribe"]},
                    },
                }
            )
        config = {
            "listen": f"127.0.0.1:{self.port}",
            "server_name": f"rollup-bus-{self.port}",
            "max_payload": MAX_PAYLOAD,
            "jetstream": {"store_dir": str(self.store_dir)},
            "authorization": {"users": users},
        }
        # JSON is a subset of the server's configuration syntax (quoted strings keep `$JS...`
        # literal rather than a variable).
        tmp = self.config_path.with_name(f".{self.config_path.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(config, out, indent=1)
        tmp.replace(self.config_path)

    def _provision(self) -> None:
        from services.bus.nats import provision

        try:
            asyncio.run(provision(self.url, self.credentials(None), self.chains))
        except Exception as exc:  # noqa: BLE001 - any failure leaves the server unusable
            self.stop()
            raise NatsServerError(f"cannot create the bus stream and consumers: {exc}") from exc
