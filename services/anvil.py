"""Anvil, the devnet L1: find the binary that npm installed and run it on loopback.

The binary comes from the npm package `@foundry-rs/anvil` (pinned in package-lock.json and
installed by scripts/setup.sh), whose platform package ships it at
`node_modules/@foundry-rs/anvil-<os>-<arch>/bin/anvil`. `ROLLUP_ANVIL` overrides the path.
"""

from __future__ import annotations

import os
import platform
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from rollup.errors import ProcessError
from services.process import ManagedProcess, answers_rpc, free_port, log_tail, port_is_free

__all__ = ["ANVIL_ENV", "AnvilError", "AnvilProcess", "find_anvil"]

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


class AnvilProcess:
    """One Anvil process on 127.0.0.1, started with `start()` and ended with `stop()`.

    Used as a context manager it starts with the defaults unless already started, and always
    stops on exit. Output goes to `log_path`: a file in `log_dir`, or a temporary file. Each
    start is a `ManagedProcess` (services/process.py) on the arguments it was given, ready once
    it answers `eth_chainId` with its chain id.
    """

    def __init__(self, log_dir: Path | None = None, binary: Path | None = None) -> None:
        self._log_dir = log_dir
        self._binary = binary
        self._process: ManagedProcess | None = None
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
        if self._process is not None:
            raise AnvilError(f"anvil already started (pid {self._process.pid})")
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
        self.log_path = self._new_log_path()
        url = f"http://127.0.0.1:{self._port}"
        self._process = ManagedProcess(
            f"anvil on {url}",
            args,
            self.log_path,
            ready=answers_rpc(url, chain_id),
            error=AnvilError,
            start_timeout=START_TIMEOUT,
            stop_timeout=STOP_TIMEOUT,
        )
        try:
            self._process.start()
        except BaseException:
            self._process = None
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
        pid = self._require_started().pid
        assert pid is not None
        return pid

    def running(self) -> bool:
        return self._process is not None and self._process.running()

    def stop(self) -> None:
        """SIGTERM, wait, then SIGKILL if it lingers. Safe to call more than once."""
        process, self._process = self._process, None
        if process is not None:
            process.stop()

    def log_tail(self, lines: int = 20) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return log_tail(self.log_path, lines)

    def __enter__(self) -> Self:
        if self._process is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _new_log_path(self) -> Path:
        if self._log_dir is not None:
            return self._log_dir / f"anvil-{self._port}.log"
        with tempfile.NamedTemporaryFile(prefix="anvil-", suffix=".log", delete=False) as log:
            return Path(log.name)

    def _require_started(self) -> ManagedProcess:
        if self._process is None:
            raise AnvilError("anvil is not started")
        return self._process


def _npm_platform_package() -> str:
    system = platform.system().lower()
    arch = _NPM_ARCH.get(platform.machine().lower(), platform.machine().lower())
    return f"anvil-{'win32' if system == 'windows' else system}-{arch}"


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)
