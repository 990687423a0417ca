"""Start and stop one app's node process (`python -m services.node`) on loopback, by PID.

Used by the devnet supervisor, the end-to-end tests and the benchmarks, so all three run the
node exactly as an operator does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import httpx

from rollup.errors import ProcessError
from services.anvil import free_port

__all__ = ["NodeProcess", "NodeStartError"]

START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


class NodeStartError(ProcessError, RuntimeError):
    """The node process exited, or did not answer, before it was ready."""


class NodeProcess:
    def __init__(self, app_dir: Path, data_dir: Path, port: int | None = None,
                 db_url: str | None = None, log_path: Path | None = None,
                 bus: str | None = None, extra_args: Sequence[str] = (),
                 env: Mapping[str, str] | None = None) -> None:  # fmt: skip
        """`extra_args` go to `services.node` as they are (the DA poster's, say); `env` is
        added to the child's environment."""
        self.extra_args, self.extra_env = list(extra_args), dict(env or {})
        self.app_dir, self.data_dir = Path(app_dir), Path(data_dir)
        self.port = port or free_port()
        self.db_url = db_url
        self.bus = bus  # the message bus URL (`--bus`), if any
        self.log_path = log_path or self.data_dir / "node.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def start(self, timeout: float = START_TIMEOUT) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the child's life
        cmd = [sys.executable, "-m", "services.node", "--app-dir", str(self.app_dir),
               "--data-dir", str(self.data_dir), "--port", str(self.port)]  # fmt: skip
        if self.db_url:
            cmd += ["--db-url", self.db_url]
        if self.bus:
            cmd += ["--bus", self.bus]
        cmd += self.extra_args
        env = dict(os.environ, ETH_HASH_BACKEND=os.environ.get("ETH_HASH_BACKEND", "pysha3"))
        env.update(self.extra_env)
        self._proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        body = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise NodeStartError(
                    f"node exited with {self._proc.returncode}:\n{self.log_tail()}"
                )
            try:
                if httpx.post(self.url, json=body, timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise NodeStartError(f"node did not answer within {timeout} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def kill(self) -> None:
        """SIGKILL: the crash that tests recovery."""
        if self._proc is not None:
            self._proc.send_signal(signal.SIGKILL)
            self._proc.wait()
            self._close()

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._close()

    def _close(self) -> None:
        self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Self:
        if self._proc is None:
            self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:  # fmt: skip
        self.stop()
