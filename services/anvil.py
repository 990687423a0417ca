"""Anvil, the devnet L1: find the binary that npm installed and run it on loopback.

The binary comes from the npm package `@foundry-rs/anvil` (pinned in package-lock.json and
installed by scripts/setup.sh), whose platform package ships it at
`node_modules/@foundry-rs/anvil-<os>-<arch>/bin/anvil`. `ROLLUP_ANVIL` overrides the path.
"""

from __future__ import annotations

import contextlib
import os
import platform
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import httpx

from rollup.errors import ProcessError

__all__ = ["ANVIL_ENV", "AnvilError", "AnvilProcess", "find_anvil", "free_port", "port_is_free"]

ANVIL_ENV = "ROLLUP_ANVIL"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 5.0

_REPO_ROOT = Path(__file__).resolve().parent.parent
_NPM_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


class AnvilError(ProcessError):
    """Anvil is missing, would not start, or is used before it was started."""


def find_anvil() -> Path:
    """The Anvil binary: `$ROLLUP_ANVIL` if set, else the one npm installed in this repo."""
    override = os.environ.get(ANVIL_ENV)
    if override:
        path = Path(override)
        if not _is_executable(path):
            raise AnvilError(f"{ANVIL_ENV}={override} is not an executable file")
        return path
    path = _REPO_ROOT / "node_modules" / "@foundry-rs" / _npm_platform_package() / "bin" / "anvil"
    if not _is_executable(path):
        raise AnvilError(
            f"anvil not found at {path}; run scripts/setup.sh (it installs the npm packages) "
            f"or set {ANVIL_ENV} to an anvil binary"
        )
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class AnvilProcess:
    """One Anvil process on 127.0.0.1, started with `start()` and ended with `stop()`.

    Used as a context manager it starts with the defaults unless already started, and always
    stops on exit. Output goes to `log_path`: a file in `log_dir`, or a temporary file.
    """

    def __init__(self, log_dir: Path | None = None, binary: Path | None = None) -> None:
        self._log_dir = log_dir
        self._binary = binary
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._port = 0
        self.chain_id = 0
        self.log_path: Path | None = None

    def start(
        self,
        port: int | None = None,
        chain_id: int = 31337,
        block_time: float | None = None,
        state_dir: Path | None = None,
        hardfork: str | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        """Start Anvil and return once it answers `eth_chainId` (or raise `AnvilError`)."""
        if self._proc is not None:
            raise AnvilError(f"anvil already started (pid {self._proc.pid})")
        binary = self._binary or find_anvil()
        if port is not None and not port_is_free(port):
            # Checked up front: another node on the port would answer eth_chainId for us.
            raise AnvilError(f"port {port} on 127.0.0.1 is already in use")
        self._port = port or free_port()
        self.chain_id = chain_id
        args = [str(binary), "--host", "127.0.0.1", "--port", str(self._port)]
        args += ["--chain-id", str(chain_id), "--quiet"]
        if block_time is not None:
            args += ["--block-time", f"{block_time:g}"]
        if hardfork is not None:
            args += ["--hardfork", hardfork]
        if state_dir is not None:
            state_dir.mkdir(parents=True, exist_ok=True)
            args += ["--state", str(state_dir / "anvil-state.json")]
        args += list(extra_args)
        self._log = self._open_log()
        self._proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C meant for the supervisor does not reach it
        )
        try:
            self._wait_ready(time.monotonic() + START_TIMEOUT)
        except BaseException:
            self.stop()
            raise

    @property
    def rpc_url(self) -> str:
        self._require_started()
        return f"http://127.0.0.1:{self._port}"

    @property
    def port(self) -> int:
        self._require_started()
        return self._port

    @property
    def pid(self) -> int:
        return self._require_started().pid

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> None:
        """SIGTERM, wait, then SIGKILL if it lingers. Safe to call more than once."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 20) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> Self:
        if self._proc is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _open_log(self) -> IO[bytes]:
        if self._log_dir is not None:
            self._log_dir.mkdir(parents=True, exist_ok=True)
            self.log_path = self._log_dir / f"anvil-{self._port}.log"
            return self.log_path.open("ab")
        log = tempfile.NamedTemporaryFile(prefix="anvil-", suffix=".log", delete=False)  # noqa: SIM115
        self.log_path = Path(log.name)
        return log

    def _wait_ready(self, deadline: float) -> None:
        proc = self._require_started()
        expected = hex(self.chain_id)
        # trust_env=False: a proxy from the environment must not sit between us and loopback.
        with httpx.Client(trust_env=False, timeout=1.0) as client:
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    raise AnvilError(
                        f"anvil exited with code {proc.returncode} before answering on "
                        f"{self.rpc_url}; log tail ({self.log_path}):\n{self.log_tail()}"
                    )
                if _chain_id(client, self.rpc_url) == expected and proc.poll() is None:
                    return
                time.sleep(0.05)
        raise AnvilError(
            f"anvil did not answer eth_chainId on {self.rpc_url} within {START_TIMEOUT:g} s; "
            f"log tail ({self.log_path}):\n{self.log_tail()}"
        )

    def _require_started(self) -> subprocess.Popen[bytes]:
        if self._proc is None:
            raise AnvilError("anvil is not started")
        return self._proc


def _chain_id(client: httpx.Client, url: str) -> str | None:
    """The node's `eth_chainId`, or None while it does not answer yet."""
    request = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
    with contextlib.suppress(httpx.HTTPError, ValueError):
        result = client.post(url, json=request).json().get("result")
        return result if isinstance(result, str) else None
    return None


def port_is_free(port: int) -> bool:
    """True if nothing listens on 127.0.0.1:`port` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As servers bind: connections of a process that just exited (TIME_WAIT) do not
        # count, a listener does (Linux refuses the bind then even with SO_REUSEADDR).
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _npm_platform_package() -> str:
    system = platform.system().lower()
    arch = _NPM_ARCH.get(platform.machine().lower(), platform.machine().lower())
    return f"anvil-{'win32' if system == 'windows' else system}-{arch}"


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)
