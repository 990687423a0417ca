"""One app's node process (`python -m services.node`) on loopback: `NodeProcess`.

Used by the devnet supervisor, the end-to-end tests, the benchmarks and the `evm` template's
tests, so all of them run the node exactly as an operator does. It is a `ManagedProcess`
(services/process.py): ready once it answers `eth_chainId`, stopped by SIGTERM then SIGKILL.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from rollup.errors import ProcessError
from services.process import ManagedProcess, answers_rpc, free_port

__all__ = ["NODE_COMMAND", "NodeProcess", "NodeStartError"]

NODE_COMMAND = (sys.executable, "-m", "services.node")
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


class NodeStartError(ProcessError, RuntimeError):
    """The node process exited, or did not answer, before it was ready."""


class NodeProcess(ManagedProcess):
    """`python -m services.node --app-dir A --data-dir D --host 127.0.0.1 --port P ...`."""

    def __init__(
        self,
        app_dir: Path,
        data_dir: Path,
        port: int | None = None,
        db_url: str | None = None,
        log_path: Path | None = None,
        bus: str | None = None,
        extra_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        *,
        chain_id: int | None = None,
        name: str = "node",
        command: Sequence[str] = NODE_COMMAND,
        start_timeout: float = START_TIMEOUT,
        error: type[ProcessError] = NodeStartError,
    ) -> None:
        """`extra_args` go to `services.node` as they are (the DA poster's, say); `env` is
        added to the child's environment; with `chain_id` it is ready only once it answers
        that chain id; `command` replaces `python -m services.node` (a test's own); `error`
        is the class of its failures (the devnet's own, say)."""
        self.app_dir, self.data_dir = Path(app_dir), Path(data_dir)
        self.port = port or free_port()
        self.db_url, self.bus = db_url, bus  # bus: the message bus URL (`--bus`), if any
        args = [
            *command,
            "--app-dir",
            str(self.app_dir),
            "--data-dir",
            str(self.data_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        if db_url:
            args += ["--db-url", db_url]
        if bus:
            args += ["--bus", bus]
        super().__init__(
            name,
            [*args, *extra_args],
            log_path or self.data_dir / "node.log",
            ready=answers_rpc(self.url, chain_id),
            env=env,
            error=error,
            start_timeout=start_timeout,
            stop_timeout=STOP_TIMEOUT,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def spawn(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        super().spawn()
