"""The processes we start: the node, Anvil, nats-server, the verifier, the detached devnet.

One type, `ManagedProcess`, starts and stops each of them the same way:

- a new session (a Ctrl-C meant for us does not reach it), stdin closed, stdout and stderr
  appended to its log file, our environment plus unbuffered Python output, the keccak backend
  the project runs with unless one is chosen, and what the caller adds;
- ready once its probe says so: `answers_rpc` (eth_chainId, optionally a given chain id),
  `answers_http` (a 200 to GET), `accepts_tcp`; all on loopback, ignoring proxy settings.
  If it exits first, or is not ready in time, its error class (a `ProcessError`) says so in
  one line, with its log's path and last line (a node's own one-line reason), and the
  process is stopped;
- stopped by SIGTERM, then SIGKILL after `stop_timeout`; `kill()` is the crash the recovery
  tests inflict; `stop_all` stops several at once.

Processes another process started and recorded (the devnet's state file) are stopped by PID:
`pid_alive`, `cmdline_mentions` (against PID reuse), `terminate_pids`. Ports: `free_port`,
`port_is_free`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import httpx

from rollup.errors import ProcessError
from services.rpcclient import RpcCallError, RpcUnavailable, rpc_call
from services.waiting import WaitTimeout, wait_until

__all__ = [
    "ManagedProcess",
    "Probe",
    "accepts_tcp",
    "answers_http",
    "answers_rpc",
    "child_env",
    "cmdline_mentions",
    "free_port",
    "log_tail",
    "pid_alive",
    "port_is_free",
    "stop_all",
    "terminate_pids",
]

log = logging.getLogger(__name__)

Probe = Callable[[], bool]  # True once the process serves what it is for
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
PROBE_TIMEOUT = 1.0
POLL = 0.05


class ManagedProcess:
    """One child process: `start()` (or `spawn()` then `wait_ready()`), `stop()`, `kill()`.

    `start()` again after it exited starts it again, on the same command and log file. As a
    context manager it starts the process unless it runs, and stops it on exit.
    """

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        log_path: Path,
        *,
        ready: Probe | None = None,
        env: Mapping[str, str] | None = None,
        error: type[ProcessError] = ProcessError,
        start_timeout: float = START_TIMEOUT,
        stop_timeout: float = STOP_TIMEOUT,
    ) -> None:
        """`name` says which process in messages ("node token"); `ready` is its probe (none:
        ready once started); `env` is added to ours; `error` is the class of its failures."""
        self.name, self.command, self.log_path = name, list(command), Path(log_path)
        self.ready, self.env, self.error = ready, dict(env or {}), error
        self.start_timeout, self.stop_timeout = start_timeout, stop_timeout
        self.started_at = 0.0  # time.monotonic() of the last start
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def exited(self) -> int | None:
        """The exit code of a process that was started and has exited; None otherwise."""
        return None if self._proc is None else self._proc.poll()

    def start(
        self, timeout: float | None = None, interrupted: Callable[[], bool] | None = None
    ) -> None:
        """Spawn the process and wait until it is ready (see `wait_ready`)."""
        self.spawn()
        self.wait_ready(timeout, interrupted)

    def spawn(self) -> None:
        """Start the process and return at once."""
        if self.running():
            raise self.error(f"{self.name} is already running (pid {self.pid})")
        self._close_log()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self._proc = subprocess.Popen(
            self.command,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=child_env(self.env),
            start_new_session=True,  # a Ctrl-C meant for us does not reach it
        )
        self.started_at = time.monotonic()

    def wait_ready(
        self, timeout: float | None = None, interrupted: Callable[[], bool] | None = None
    ) -> None:
        """Return once the probe answers; raise `error` if the process exits first, if
        `interrupted()` turns true, or after `timeout` s (default: `start_timeout`), and
        then stop the process."""
        timeout = self.start_timeout if timeout is None else timeout
        probe = self.ready
        if probe is None:
            return

        def ready() -> bool:
            code = self.exited()
            if code is not None:
                raise self.error(
                    f"{self.name} exited with code {code} before it was ready; {self._log_ending()}"
                )
            if interrupted is not None and interrupted():
                raise self.error(f"interrupted while starting {self.name}")
            return probe()

        try:
            wait_until(ready, timeout, f"{self.name} to be ready", interval=POLL)
        except WaitTimeout:
            ending = self._log_ending()
            self.stop()
            raise self.error(f"{self.name} was not ready within {timeout:g} s; {ending}") from None
        except BaseException:
            self.stop()  # never leave behind a process the caller does not know is running
            raise

    def log_tail(self, lines: int = 20) -> str:
        return log_tail(self.log_path, lines)

    def terminate(self) -> None:
        """SIGTERM, without waiting (see `stop`)."""
        if self.running():
            assert self._proc is not None
            self._proc.send_signal(signal.SIGTERM)

    def stop(self, timeout: float | None = None) -> None:
        """SIGTERM, wait up to `timeout` (default: `stop_timeout`), then SIGKILL. Idempotent."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(self.stop_timeout if timeout is None else timeout)
            except subprocess.TimeoutExpired:
                log.warning("%s (pid %d) ignored SIGTERM; sending SIGKILL", self.name, proc.pid)
                proc.kill()
                proc.wait()
        self._close_log()

    def kill(self) -> None:
        """SIGKILL: the crash that tests recovery."""
        if self._proc is not None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()
            self._proc.wait()
        self._close_log()

    def release(self) -> None:
        """Leave the process running on its own (a detached devnet outlives its caller):
        close our handle on its log."""
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def _log_ending(self) -> str:
        lines = [line.strip() for line in self.log_tail(lines=50).splitlines() if line.strip()]
        return f"its log ({self.log_path}) ends: {lines[-1] if lines else '(nothing)'}"

    def __enter__(self) -> Self:
        if not self.running():
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def stop_all(processes: Sequence[ManagedProcess], timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM every one, then wait for each (`timeout` in all) and SIGKILL what lingers."""
    for process in processes:
        process.terminate()
    deadline = time.monotonic() + timeout
    for process in processes:
        process.stop(max(0.0, deadline - time.monotonic()))


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Our environment, with unbuffered Python output (logs appear as they happen) and the
    keccak backend the project runs with unless one is chosen already, plus `extra`."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.setdefault("ETH_HASH_BACKEND", "pysha3")
    env.update(extra or {})
    return env


def log_tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


# ---- probes ---------------------------------------------------------------------------------


def answers_rpc(url: str, chain_id: int | None = None) -> Probe:
    """True once `url` answers eth_chainId (with `chain_id`, if given)."""

    def probe() -> bool:
        try:
            answer = rpc_call(url, "eth_chainId", timeout=PROBE_TIMEOUT)
        except (RpcUnavailable, RpcCallError):
            return False
        return isinstance(answer, str) and (chain_id is None or answer == hex(chain_id))

    return probe


def answers_http(url: str) -> Probe:
    """True once GET `url` answers 200."""

    def probe() -> bool:
        try:
            with httpx.Client(trust_env=False, timeout=PROBE_TIMEOUT) as client:
                return client.get(url).status_code == 200
        except httpx.HTTPError:
            return False

    return probe


def accepts_tcp(port: int, host: str = "127.0.0.1") -> Probe:
    """True once something accepts connections on `host:port`."""

    def probe() -> bool:
        try:
            with socket.create_connection((host, port), timeout=PROBE_TIMEOUT):
                return True
        except OSError:
            return False

    return probe


# ---- ports ----------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


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


# ---- by PID ---------------------------------------------------------------------------------


def pid_alive(pid: int) -> bool:
    """Whether `pid` runs; a zombie (exited, not yet reaped) counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


def cmdline_mentions(pid: int, marker: str) -> bool:
    """Guards against PID reuse: does the process with `pid` look like the one we recorded?

    Where /proc is not available we cannot tell, and trust the record.
    """
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return not Path("/proc/self").exists()
    except OSError:
        return True
    return marker.encode() in cmdline


def terminate_pids(pids: Sequence[int], timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM each live PID, wait up to `timeout` for all, then SIGKILL the ones left."""
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    with contextlib.suppress(WaitTimeout):
        wait_until(
            lambda: not any(pid_alive(p) for p in pids), timeout, "the PIDs to exit", interval=POLL
        )
    for pid in pids:
        if pid_alive(pid):
            log.warning("pid %d ignored SIGTERM for %.0f s; sending SIGKILL", pid, timeout)
            _signal(pid, signal.SIGKILL)


def _signal(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)
