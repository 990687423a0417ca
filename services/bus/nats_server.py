"""Start and stop a local `nats-server -js` (Debian's package) on loopback, by PID.

Used by `rollup up --bus nats`, the bus tests and `rollup bench bus`. JetStream keeps its
files in `store_dir`, so a server restarted on the same directory and port finds its streams
and consumers again.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from services.anvil import free_port

__all__ = ["NatsServerProcess", "NatsServerError", "find_nats_server"]

START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0


class NatsServerError(RuntimeError):
    pass


def find_nats_server() -> Path:
    found = shutil.which("nats-server") or shutil.which("nats-server", path="/usr/sbin:/usr/bin")
    if found is None:
        raise NatsServerError("nats-server is not installed (Debian: apt-get install nats-server)")
    return Path(found)


class NatsServerProcess:
    def __init__(self, store_dir: Path, port: int | None = None,
                 log_path: Path | None = None) -> None:  # fmt: skip
        self.store_dir = Path(store_dir)
        self.port = port or free_port()
        self.log_path = log_path or self.store_dir / "nats-server.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = START_TIMEOUT) -> None:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the child's life
        cmd = [str(find_nats_server()), "-js", "-a", "127.0.0.1", "-p", str(self.port),
               "-sd", str(self.store_dir), "-n", f"rollup-bus-{self.port}"]  # fmt: skip
        self._proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C meant for the caller does not reach it
        )  # fmt: skip
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise NatsServerError(
                    f"nats-server exited with {self._proc.returncode}:\n{self.log_tail()}"
                )
            if "Server is ready" in self.log_tail(50) and _accepts(self.port):
                return
            time.sleep(0.05)
        raise NatsServerError(f"nats-server did not start within {timeout} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def kill(self) -> None:
        """SIGKILL: the crash the fault tests inflict."""
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


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False
