"""The devnet supervisor: an L1, the DA contracts on it, the message bus, one node per app and
(with `verify`) one verifier per app, started in that order, watched, and stopped.

`Devnet.start()` returns once everything answers and the state file names it; `watch()`
restarts what crashed until `request_stop()` (safe from a signal handler): Anvil and our
nats-server on their ports, a node or verifier on its port, later and later if it keeps
crashing (a node resumes from its database); `stop()` ends everything and is idempotent.
`serve(devnet)` does all of it in the foreground, stopping on SIGINT or SIGTERM.

The operator may stop, start or restart a node (services/devnet/control.py: the admin API
asks, `watch()` does it on its next turn); a node stopped so is not restarted until asked.

Last, the REST admin API (services/admin/: `python -m services.admin`) on its own port, its
tokens in DATA/admin/ (made before the nodes start: each node requires the admin token for its
admin_ JSON-RPC methods, named to it by $ROLLUP_ADMIN_TOKEN_FILE); restarted like the others.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from services.admin.tokens import Tokens, ensure_tokens
from services.bus.devnet import DevnetBus
from services.bus.nats_server import NatsServerError
from services.bus.transport import BusConfigError
from services.devnet.control import clear_wanted, read_wanted
from services.devnet.errors import DevnetError
from services.devnet.l1 import DevnetDA, DevnetL1
from services.devnet.options import DA_BACKENDS, check_l1_key_file
from services.devnet.specs import AppSpec
from services.devnet.state import (
    STATE_VERSION,
    AdminRecord,
    AppRecord,
    DevnetState,
    is_running,
    read_state,
    state_path,
    stop_recorded,
    write_state,
)
from services.launch import NODE_COMMAND, NodeProcess
from services.process import ManagedProcess, answers_http, free_port, port_is_free, stop_all

__all__ = ["Devnet", "NODE_START_TIMEOUT", "serve"]

log = logging.getLogger(__name__)

NODE_START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
WATCH_INTERVAL = 0.5
MAX_RESTART_DELAY = 30.0
STABLE_AFTER = 10.0  # a node that ran this long before crashing restarts without delay


@dataclass(slots=True)
class _Watched:
    """A node or verifier process and what the supervisor knows about its restarts."""

    spec: AppSpec
    process: ManagedProcess
    port: int
    restarts: int = 0
    restart_at: float | None = None  # when a crashed process is due to start again
    stopped: bool = False  # by the operator (control.py): not a crash, stays stopped
    restart_seen: int = 0  # the operator's restarts carried out

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class Devnet:
    """Starts, watches and stops an L1 and one node per app; records them in `devnet.json`."""

    def __init__(
        self,
        apps: Sequence[AppSpec],
        data_dir: Path,
        l1_rpc: str | None = None,
        port_base: int | None = None,
        node_command: Sequence[str] = NODE_COMMAND,
        start_timeout: float = NODE_START_TIMEOUT,
        da: str = "local",
        da_mode: str = "calldata",
        verify: bool = False,
        bus: str = "embedded",
        l1_key_file: Path | None = None,
        admin_port: int | None = None,
    ) -> None:
        """`admin_port`: the admin API's (default: a free one)."""
        self.data_dir = data_dir.resolve()
        self.logs_dir = self.data_dir / "logs"
        try:
            self._bus = DevnetBus(bus, self.data_dir, self.logs_dir)
        except BusConfigError as exc:
            raise DevnetError(str(exc)) from None
        if da not in DA_BACKENDS:
            raise DevnetError(f"unknown DA backend {da!r}, one of {DA_BACKENDS}")
        if verify and da == "none":
            raise DevnetError("a verifier needs DA: use --da local or --da ethereum")
        check_l1_key_file(l1_rpc, da, l1_key_file)
        self._l1 = DevnetL1(self.data_dir, self.logs_dir, l1_rpc)
        self._da = DevnetDA(da, da_mode, l1_key_file)
        self._apps, self._verify = list(apps), verify
        self._port_base = port_base
        self._node_command = tuple(node_command)
        self._start_timeout = start_timeout
        self._nodes: list[_Watched] = []
        self._verifiers: list[_Watched] = []
        self._tokens: Tokens | None = None
        self._admin: ManagedProcess | None = None
        self._admin_port = admin_port
        self._stopping = threading.Event()
        self._started = False

    @property
    def l1_rpc(self) -> str | None:
        return self._l1.rpc_url

    # -- lifecycle

    def start(self) -> DevnetState:
        """Start the L1 and every node, wait until all answer, write the state file."""
        self._refuse_if_running()
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self._started = True
        # Ports first: a taken --port-base port fails before anything starts.
        ports = [self._port_for(index) for index in range(len(self._apps))]
        admin_port = self._admin_port_free()
        self._tokens = ensure_tokens(self.data_dir)
        clear_wanted(self.data_dir)
        self._l1.start()
        self._da.prepare(self._l1, [(spec, self._app_data(spec)) for spec in self._apps])
        self._start_bus()
        self._nodes = [self._node(spec, port) for spec, port in zip(self._apps, ports)]
        self._start_all(self._nodes)
        if self._verify:
            self._verifiers = [self._verifier(spec) for spec in self._apps]
            self._start_all(self._verifiers)
        self._admin = self._admin_process(admin_port)
        self._admin.start(interrupted=self._stopping.is_set)
        log.info("admin API (pid %d) on %s", self._admin.pid, self.admin_url)
        state = self.state()
        write_state(self.data_dir, state)
        log.info("devnet up: %d app(s), L1 at %s", len(self._nodes), self.l1_rpc)
        return state

    def watch(self) -> None:
        """Restart crashed processes until `request_stop()`."""
        while not self._stopping.wait(WATCH_INTERVAL):
            changed = self._l1.check() | self._bus.check()
            for watched in self._nodes:
                changed |= self._obey(watched)
            for watched in self._nodes + self._verifiers:
                changed |= self._check(watched)
            changed |= self._check_admin()
            if changed:
                write_state(self.data_dir, self.state())

    def request_stop(self) -> None:
        self._stopping.set()

    def stop(self) -> None:
        """SIGTERM the nodes, SIGKILL the ones that linger, stop Anvil, remove the state file."""
        self._stopping.set()
        if not self._started:
            return
        self._started = False
        admin = [self._admin] if self._admin is not None else []
        stop_all(admin + [w.process for w in self._verifiers + self._nodes], STOP_TIMEOUT)
        self._l1.stop()
        self._bus.stop()
        self._remove_own_state()
        log.info("devnet stopped")

    def state(self) -> DevnetState:
        return {
            "version": STATE_VERSION,
            "supervisor_pid": os.getpid(),
            "data_dir": str(self.data_dir),
            "logs_dir": str(self.logs_dir),
            "l1": self._l1.record(),
            "apps": [self._record(node) for node in self._nodes],
            "da": self._da.record(),
            "bus": self._bus.record(),
            "admin": self._admin_record(),
        }

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self._admin_port}"

    # -- the processes

    def _app_data(self, spec: AppSpec) -> Path:
        return self.data_dir / "apps" / spec.name

    def _port_for(self, index: int) -> int:
        if self._port_base is None:
            return free_port()
        port = self._port_base + index
        if not port_is_free(port):
            raise DevnetError(f"port {port} on 127.0.0.1 is already in use (from --port-base)")
        return port

    def _start_bus(self) -> None:
        try:
            url = self._bus.start({s.chain_id: self._app_data(s) for s in self._apps})
        except (BusConfigError, NatsServerError) as exc:
            raise DevnetError(f"cannot start the message bus: {exc}") from None
        log.info("message bus: %s", url)

    def _node(self, spec: AppSpec, port: int) -> _Watched:
        bus = self._bus.node_arguments(spec.chain_id) if self._bus.url else []
        env = {"ROLLUP_L1_RPC": self.l1_rpc or "", **self._da.node_env(spec.name)}
        if self._tokens is not None:
            env["ROLLUP_ADMIN_TOKEN_FILE"] = str(self._tokens.admin_file)
        process = NodeProcess(
            spec.app_dir,
            self._app_data(spec),
            port,
            extra_args=bus,
            log_path=self.logs_dir / f"{spec.name}.log",
            env=env,
            chain_id=spec.chain_id,
            name=f"node {spec.name}",
            command=self._node_command,
            error=DevnetError,
            start_timeout=self._start_timeout,
        )
        return _Watched(spec, process, port)

    def _verifier(self, spec: AppSpec) -> _Watched:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        command = self._da.verifier_command(
            self.l1_rpc or "", spec.app_dir, self._app_data(spec), port
        )
        process = ManagedProcess(
            f"verifier {spec.name}",
            command,
            self.logs_dir / f"{spec.name}-verifier.log",
            ready=answers_http(f"{url}/health"),
            error=DevnetError,
            env={"ROLLUP_L1_RPC": self.l1_rpc or ""},
            start_timeout=self._start_timeout,
        )
        return _Watched(spec, process, port)

    def _admin_port_free(self) -> int:
        if self._admin_port is None:
            self._admin_port = free_port()
        elif not port_is_free(self._admin_port):
            raise DevnetError(
                f"port {self._admin_port} on 127.0.0.1 is already in use (--admin-port)"
            )
        return self._admin_port

    def _admin_process(self, port: int) -> ManagedProcess:
        command = [sys.executable, "-m", "services.admin", "--data-dir", str(self.data_dir)]
        return ManagedProcess(
            "admin API",
            [*command, "--port", str(port)],
            self.logs_dir / "admin.log",
            ready=answers_http(f"{self.admin_url}/healthz"),
            error=DevnetError,
            start_timeout=self._start_timeout,
        )

    def _check_admin(self) -> bool:
        """Start the admin API again if it exited, at most once every STABLE_AFTER seconds
        (one that keeps crashing at start must not spin). True if it did."""
        if self._admin is None or self._admin.exited() is None:
            return False
        if time.monotonic() < self._admin.started_at + STABLE_AFTER:
            return False
        log.warning("the admin API exited; restarting it (log: %s)", self._admin.log_path)
        self._admin.spawn()
        return True

    def _admin_record(self) -> AdminRecord | None:
        if self._admin is None or self._tokens is None:
            return None
        return {
            "url": self.admin_url,
            "token_file": str(self._tokens.admin_file),
            "read_token_file": str(self._tokens.read_file),
            "pid": self._admin.pid or 0,
            "port": self._admin_port or 0,
            "log": str(self._admin.log_path),
        }

    def _start_all(self, group: list[_Watched]) -> None:
        """Spawn every process of the group, then wait for each to answer."""
        for watched in group:
            self._spawn(watched)
        for watched in group:
            watched.process.wait_ready(interrupted=self._stopping.is_set)

    def _spawn(self, watched: _Watched) -> None:
        watched.process.spawn()
        watched.restart_at = None
        log.info("%s (pid %d) on %s", watched.process.name, watched.process.pid, watched.url)

    def _obey(self, watched: _Watched) -> bool:
        """Stop, start or restart a node as the operator asked (control.py). True if it did."""
        wanted = read_wanted(self.data_dir, watched.spec.name)
        if not wanted.run:
            if watched.stopped:
                return False
            log.info("stopping %s, as the operator asked", watched.process.name)
            watched.process.stop()
            watched.stopped = True
            return True
        restart = wanted.restart > watched.restart_seen
        watched.restart_seen = max(wanted.restart, watched.restart_seen)
        if not (restart or watched.stopped):
            return False
        log.info("starting %s, as the operator asked", watched.process.name)
        watched.process.stop()
        watched.stopped = False
        self._spawn(watched)
        return True

    def _check(self, watched: _Watched) -> bool:
        """Restart a crashed process, later and later if it keeps crashing. True if it did."""
        code = watched.process.exited()
        if code is None or watched.stopped:
            return False
        now = time.monotonic()
        if watched.restart_at is None:
            watched.restart_at = now + self._restart_delay(watched, now)
            log.warning(
                "%s exited with code %s; restarting in %.0f s (log: %s)",
                watched.process.name,
                code,
                watched.restart_at - now,
                watched.process.log_path,
            )
        if now < watched.restart_at:
            return False
        watched.restarts += 1
        self._spawn(watched)
        return True

    @staticmethod
    def _restart_delay(watched: _Watched, now: float) -> float:
        if now - watched.process.started_at >= STABLE_AFTER:
            return 0.0
        return float(min(MAX_RESTART_DELAY, 2 ** min(watched.restarts, 5)))

    def _record(self, node: _Watched) -> AppRecord:
        spec = node.spec
        verifier = next((v for v in self._verifiers if v.spec.name == spec.name), None)
        return {
            "name": spec.name,
            "chain_id": spec.chain_id,
            "vm": spec.vm,
            "address": spec.address,
            "app_dir": str(spec.app_dir),
            "rpc_url": node.url,
            "port": node.port,
            "pid": node.process.pid or 0,
            "data_dir": str(self._app_data(spec)),
            "log": str(node.process.log_path),
            "restarts": node.restarts,
            "stopped": node.stopped,
            "verifier": None
            if verifier is None
            else {
                "pid": verifier.process.pid or 0,
                "port": verifier.port,
                "status_url": f"{verifier.url}/status",
                "log": str(verifier.process.log_path),
            },
        }

    # -- the state file

    def _refuse_if_running(self) -> None:
        state = read_state(self.data_dir)
        if state is None:
            return
        if is_running(state):
            raise DevnetError(
                f"a devnet is already running from {self.data_dir} "
                f"(supervisor pid {state['supervisor_pid']}); stop it with `rollup down`"
            )
        log.warning("cleaning up after a devnet that did not stop cleanly")
        stop_recorded(self.data_dir)

    def _remove_own_state(self) -> None:
        state = read_state(self.data_dir)
        if state is not None and state["supervisor_pid"] == os.getpid():
            state_path(self.data_dir).unlink(missing_ok=True)


@contextlib.contextmanager
def _stop_on_signals(devnet: Devnet) -> Iterator[None]:
    """SIGINT and SIGTERM ask the devnet to stop; the previous handlers come back after."""

    def handle(signum: int, frame: FrameType | None) -> None:
        log.info("%s received; stopping", signal.Signals(signum).name)
        devnet.request_stop()

    previous = {s: signal.signal(s, handle) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def serve(devnet: Devnet, on_ready: Callable[[DevnetState], None] | None = None) -> None:
    """Start, call `on_ready`, watch until SIGINT/SIGTERM, stop. Main thread only."""
    with _stop_on_signals(devnet):
        try:
            state = devnet.start()
            if on_ready is not None:
                on_ready(state)
            devnet.watch()
        finally:
            devnet.stop()
