"""The devnet supervisor behind `rollup up`: an L1, then one sequencer process per app, watched.

    DATA/                       (--data-dir, default ./.rollup)
      devnet.json               the state file: who runs where (see `DevnetState`)
      l1/anvil-state.json       Anvil's chain, kept across restarts
      l1/inbox.json             the DA BatchInbox on the L1 (services/l1setup.py)
      l1/owner.key              the inbox owner's key (random, mode 0600; with an external
                                L1, the operator's --l1-key-file instead)
      apps/NAME/                each node's own data dir (its SQLite database by default,
                                da/ its local DA store, da-poster.sqlite its poster's record,
                                batcher.key its batcher's key: random, mode 0600)
      logs/NAME.log             each node's stderr and stdout
      logs/NAME-verifier.log    each verifier's (with --verify)
      logs/anvil-PORT.log       Anvil's output
      logs/devnet.log           the detached supervisor's own log

Everything binds 127.0.0.1. A node that crashes is started again on the same port and resumes
from its database. `stop()` sends SIGTERM, then SIGKILL after a timeout, by PID.

DA (`da`: "local" by default, "ethereum", or "none"): before the nodes start, the L1 gets the
BatchInbox and one funded batcher per app, and each node runs its DA poster with that backend,
told where its batcher's key file is (ROLLUP_BATCHER_KEY_FILE; the key itself is never in an
environment, a command line, a log or devnet.json). On the devnet's Anvil, dev account 0 only
funds the inbox owner; an external L1 (`l1_rpc`) needs `l1_key_file`, the owner's key file.
Anvil mines on demand and also every second (--mixed-mining, --slots-in-an-epoch 1), so its
`finalized` block trails the head by two blocks and posted batches become final on their own.
With `verify`, one verifier process per app (services/verifier.py) re-derives the app from
the L1 and the DA backend and serves its status on its own port.

The cross-app message bus (`bus`, services/bus/devnet.py): "embedded" by default (Unix sockets
in DATA/bus/, served by the nodes themselves), "nats" (a `nats-server -js` this supervisor runs
and restarts, JetStream in DATA/nats/, log in logs/nats-server.log) or an external
"nats://HOST:PORT". Every node gets the bus URL with `--bus`.

Detached mode re-executes this module as `python -m services.devnet run ...` in a new session
with its output in `logs/devnet.log`; the caller waits until the state file names that process,
which happens only once every app answers `eth_chainId`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO, TypedDict, cast

import httpx
from eth_utils import to_checksum_address

from rollup.errors import ProcessError, RollupError
from rollup.genesis import DEV_KEYS
from rollup.manifest import parse_manifest
from services.anvil import AnvilError, AnvilProcess, free_port, port_is_free
from services.bus.devnet import BusRecord, DevnetBus, add_bus_option
from services.bus.nats_server import NatsServerError
from services.bus.transport import BusConfigError
from services.keys import load_key
from services.l1setup import BatcherSpec, L1Setup, prepare_l1
from services.logs import configure_logging

__all__ = [
    "AppRecord",
    "DARecord",
    "VerifierRecord",
    "add_da_options",
    "check_l1_key_file",
    "da_arguments",
    "AppSpec",
    "Devnet",
    "DevnetError",
    "DevnetState",
    "L1Record",
    "is_running",
    "load_app_specs",
    "main",
    "pid_alive",
    "read_state",
    "rpc_call",
    "serve",
    "spawn_detached",
    "state_path",
    "stop_recorded",
    "wait_detached",
]

log = logging.getLogger(__name__)

NODE_START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
WATCH_INTERVAL = 0.5
MAX_RESTART_DELAY = 30.0
STABLE_AFTER = 10.0  # a node that ran this long before crashing restarts without delay
STATE_VERSION = 1
NODE_COMMAND = (sys.executable, "-m", "services.node")
VERIFIER_COMMAND = (sys.executable, "-m", "services.verifier")
DA_BACKENDS = ("none", "local", "ethereum")
# Anvil as the devnet's L1: automine plus a block a second, finality two blocks behind.
ANVIL_BLOCK_TIME = 1.0
ANVIL_ARGS = ("--mixed-mining", "--slots-in-an-epoch", "1")


class DevnetError(ProcessError):
    """The devnet cannot start, or is asked to do something its state does not allow."""


class L1Record(TypedDict):
    rpc_url: str
    pid: int | None  # None when the L1 is external (--l1-rpc)
    log: str | None


class VerifierRecord(TypedDict):
    pid: int
    port: int
    status_url: str  # GET: JSON status; /metrics: Prometheus text
    log: str


class DARecord(TypedDict):
    backend: str  # "local" | "ethereum"
    mode: str  # ethereum: "calldata" | "blobs"
    inbox: str  # the BatchInbox on the L1
    from_block: int  # the L1 block it was deployed in
    owner: str  # the inbox owner's address (its key: l1/owner.key or --l1-key-file)
    portal: str  # the Portal on the L1 (deposits: verifiers read them there)


class AppRecord(TypedDict):
    name: str
    chain_id: int
    vm: str
    address: str  # EIP-55 checksummed
    app_dir: str
    rpc_url: str
    port: int
    pid: int
    data_dir: str
    log: str
    restarts: int
    verifier: VerifierRecord | None


class DevnetState(TypedDict):
    """The JSON in `DATA/devnet.json`, written atomically whenever a PID changes."""

    version: int
    supervisor_pid: int
    data_dir: str
    logs_dir: str
    l1: L1Record
    apps: list[AppRecord]
    da: DARecord | None
    bus: BusRecord


@dataclass(frozen=True, slots=True)
class AppSpec:
    """One app to run, read from its `rollup.toml`."""

    app_dir: Path
    name: str
    chain_id: int
    vm: str
    address: str  # EIP-55 checksummed


def load_app_specs(app_dirs: Sequence[Path]) -> list[AppSpec]:
    """Read each app's manifest; refuse two apps with the same name or chain id."""
    specs = [_load_app_spec(Path(d)) for d in app_dirs]
    _refuse_duplicates(specs, "name", [s.name for s in specs])
    _refuse_duplicates(specs, "chain id", [s.chain_id for s in specs])
    return specs


def _load_app_spec(app_dir: Path) -> AppSpec:
    manifest_path = app_dir / "rollup.toml"
    if not manifest_path.is_file():
        raise DevnetError(f"{app_dir}: no rollup.toml (is it an app directory?)")
    try:
        manifest = parse_manifest(manifest_path.read_text(encoding="utf-8"))
    except RollupError as exc:
        raise DevnetError(f"{manifest_path}: {exc}") from None
    return AppSpec(
        app_dir=app_dir.resolve(),
        name=manifest.name,
        chain_id=manifest.chain_id,
        vm=manifest.vm,
        address=to_checksum_address(manifest.address),
    )


def _refuse_duplicates(specs: list[AppSpec], what: str, keys: Sequence[object]) -> None:
    for index, key in enumerate(keys):
        if key in keys[:index]:
            first = specs[keys.index(key)].app_dir
            raise DevnetError(
                f"two apps with the same {what} {key}: {first} and {specs[index].app_dir}"
            )


# ---- state file -----------------------------------------------------------------------------


def state_path(data_dir: Path) -> Path:
    return data_dir / "devnet.json"


def read_state(data_dir: Path) -> DevnetState | None:
    """The recorded devnet of `data_dir`, or None when there is none (or it is unreadable)."""
    try:
        data = json.loads(state_path(data_dir).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
        return None
    return cast(DevnetState, data)  # our own file, written by write_state


def write_state(data_dir: Path, state: DevnetState) -> None:
    """Write through a temporary file and rename, so a reader never sees half a file."""
    path = state_path(data_dir)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as out:
        json.dump(state, out, indent=2)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


def is_running(state: DevnetState) -> bool:
    return pid_alive(state["supervisor_pid"])


# ---- processes ------------------------------------------------------------------------------


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


def _cmdline_mentions(pid: int, marker: str) -> bool:
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
    deadline = time.monotonic() + timeout
    while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in pids:
        if pid_alive(pid):
            log.warning("pid %d ignored SIGTERM for %.0f s; sending SIGKILL", pid, timeout)
            _signal(pid, signal.SIGKILL)


def _signal(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def stop_recorded(data_dir: Path, timeout: float = STOP_TIMEOUT) -> DevnetState | None:
    """Stop the devnet recorded in `data_dir`, by PID, and remove its state file.

    The supervisor is asked first (it stops its children in order); whatever it leaves behind,
    or everything if it is gone already, is stopped here. Returns the state that was stopped.
    """
    state = read_state(data_dir)
    if state is None:
        return None
    supervisor = state["supervisor_pid"]
    if supervisor != os.getpid() and pid_alive(supervisor):
        terminate_pids([supervisor], timeout=timeout + STOP_TIMEOUT)
    terminate_pids(_leftover_pids(state), timeout=timeout)
    with contextlib.suppress(FileNotFoundError):
        state_path(data_dir).unlink()
    return state


def _leftover_pids(state: DevnetState) -> list[int]:
    pids = [a["pid"] for a in state["apps"] if _cmdline_mentions(a["pid"], a["data_dir"])]
    verifiers = [a.get("verifier") for a in state["apps"]]
    pids += [v["pid"] for v, a in zip(verifiers, state["apps"], strict=True)
             if v and _cmdline_mentions(v["pid"], a["data_dir"])]  # fmt: skip
    l1_pid = state["l1"]["pid"]
    if l1_pid is not None and _cmdline_mentions(l1_pid, "anvil"):
        pids.append(l1_pid)
    bus_pid = (state.get("bus") or {}).get("pid")
    if bus_pid is not None and _cmdline_mentions(bus_pid, "nats-server"):
        pids.append(bus_pid)
    return [p for p in pids if pid_alive(p)]


def rpc_call(url: str, method: str, params: Sequence[object] = (), timeout: float = 2.0) -> object:
    """One JSON-RPC call; raises httpx.HTTPError or ValueError when there is no result."""
    request = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
    # trust_env=False: a proxy from the environment must not sit between us and loopback.
    with httpx.Client(trust_env=False, timeout=timeout) as client:
        response = client.post(url, json=request)
    response.raise_for_status()
    body = response.json()
    if not isinstance(body, dict) or "result" not in body:
        raise ValueError(f"{method} on {url} failed: {body!r}")
    return body["result"]


def _answers_chain_id(url: str, chain_id: int) -> bool:
    with contextlib.suppress(httpx.HTTPError, ValueError):
        return rpc_call(url, "eth_chainId", timeout=1.0) == hex(chain_id)
    return False


def _answers_health(url: str) -> bool:
    with contextlib.suppress(httpx.HTTPError), httpx.Client(trust_env=False) as client:
        return client.get(f"{url}/health", timeout=1.0).status_code == 200
    return False


def _log_tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


# ---- the supervisor -------------------------------------------------------------------------


@dataclass(slots=True)
class _Node:
    """One app's node process and what the supervisor knows about it."""

    spec: AppSpec
    port: int
    data_dir: Path
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    log_file: IO[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    restart_at: float | None = None  # when a crashed node is due to start again
    role: str = "node"  # or "verifier": the app's verifier process

    @property
    def rpc_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class Devnet:
    """Starts, watches and stops an L1 and one node per app; records them in `devnet.json`.

    `start()` returns once everything answers; `watch()` restarts crashed processes until
    `request_stop()` (safe from a signal handler); `stop()` ends everything and is idempotent.
    """

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
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.logs_dir = self.data_dir / "logs"
        try:
            self._bus = DevnetBus(bus, self.data_dir, self.logs_dir)
        except BusConfigError as exc:
            raise DevnetError(str(exc)) from None
        self.l1_rpc = l1_rpc
        self._apps = list(apps)
        self._port_base = port_base
        self._node_command = tuple(node_command)
        self._start_timeout = start_timeout
        self._anvil: AnvilProcess | None = None
        self._nodes: list[_Node] = []
        self._verifiers: list[_Node] = []
        if da not in DA_BACKENDS:
            raise DevnetError(f"unknown DA backend {da!r}, one of {DA_BACKENDS}")
        if verify and da == "none":
            raise DevnetError("a verifier needs DA: use --da local or --da ethereum")
        check_l1_key_file(l1_rpc, da, l1_key_file)
        self._l1_key_file = l1_key_file
        self._da, self._da_mode, self._verify = da, da_mode, verify
        self._l1_setup: L1Setup | None = None
        self._stopping = threading.Event()
        self._started = False

    # -- lifecycle

    def start(self) -> DevnetState:
        """Start the L1 and every node, wait until all answer, write the state file."""
        self._refuse_if_running()
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self._started = True
        # Ports first: a taken --port-base port fails before anything starts.
        self._nodes = [self._make_node(index, spec) for index, spec in enumerate(self._apps)]
        if self._verify:
            self._verifiers = [self._make_verifier(node) for node in self._nodes]
        self.l1_rpc = self._start_l1()
        self._l1_setup = self._prepare_da(self.l1_rpc)
        self._start_bus()
        for node in self._nodes:
            self._spawn(node)
        for node in self._nodes:
            self._wait_ready(node)
        for verifier in self._verifiers:
            self._spawn(verifier)
        for verifier in self._verifiers:
            self._wait_ready(verifier)
        state = self.state()
        write_state(self.data_dir, state)
        log.info("devnet up: %d app(s), L1 at %s", len(self._nodes), self.l1_rpc)
        return state

    def watch(self) -> None:
        """Restart crashed processes until `request_stop()`."""
        while not self._stopping.wait(WATCH_INTERVAL):
            changed = self._check_l1() | self._bus.check()
            for node in self._nodes + self._verifiers:
                changed |= self._check_node(node)
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
        processes = self._verifiers + self._nodes
        pids = [n.proc.pid for n in processes if n.proc is not None and n.proc.poll() is None]
        terminate_pids(pids)
        for node in processes:
            self._reap(node)
        if self._anvil is not None:
            self._anvil.stop()
            self._anvil = None
        self._bus.stop()
        self._remove_own_state()
        log.info("devnet stopped")

    def state(self) -> DevnetState:
        l1: L1Record = {"rpc_url": self.l1_rpc or "", "pid": None, "log": None}
        if self._anvil is not None and self._anvil.running():
            l1["pid"] = self._anvil.pid
            l1["log"] = str(self._anvil.log_path)
        return {
            "version": STATE_VERSION,
            "supervisor_pid": os.getpid(),
            "data_dir": str(self.data_dir),
            "logs_dir": str(self.logs_dir),
            "l1": l1,
            "apps": [_record(node, self._verifier_of(node)) for node in self._nodes],
            "da": self._da_record(),
            "bus": self._bus.record(),
        }

    # -- DA and verifiers

    def _prepare_da(self, l1_rpc: str) -> L1Setup | None:
        if self._da == "none":
            return None
        batchers = [BatcherSpec(n.spec.name, n.spec.chain_id, n.data_dir / "batcher.key")
                    for n in self._nodes]  # fmt: skip
        # Anvil funds only its dev accounts: dev account 0 tops up the owner, and does no more
        funder = DEV_KEYS[0] if self._anvil is not None else None
        try:
            setup = prepare_l1(l1_rpc, batchers, self.data_dir / "l1", self._l1_key_file,
                               funder)  # fmt: skip
        except (RollupError, OSError, subprocess.SubprocessError) as exc:
            raise DevnetError(f"cannot set up the DA inbox on the L1 at {l1_rpc}: {exc}") from None
        log.info("DA: %s backend, inbox 0x%s on the L1, owned by 0x%s", self._da,
                 setup.inbox.hex(), setup.owner.hex())  # fmt: skip
        return setup

    def _da_record(self) -> DARecord | None:
        setup = self._l1_setup
        if setup is None:
            return None
        return {"backend": self._da, "mode": self._da_mode, "inbox": "0x" + setup.inbox.hex(),
                "from_block": setup.from_block, "owner": "0x" + setup.owner.hex(),
                "portal": "0x" + setup.portal.hex()}  # fmt: skip

    def _da_env(self, node: _Node) -> dict[str, str]:
        """The node's DA poster and L1 follower settings (services/da_node.py, l1follow.py):
        every node follows the devnet's Portal, whose deposits start after the inbox's block."""
        setup = self._l1_setup
        if setup is None:
            return {}
        return {"ROLLUP_DA": self._da, "ROLLUP_DA_MODE": self._da_mode,
                "ROLLUP_INBOX": "0x" + setup.inbox.hex(),
                "ROLLUP_INBOX_BLOCK": str(setup.from_block),
                "ROLLUP_BATCHER_KEY_FILE": str(setup.batchers[node.spec.name]),
                "ROLLUP_PORTAL": "0x" + setup.portal.hex(),
                "ROLLUP_PORTAL_BLOCK": str(setup.from_block)}  # fmt: skip

    def _make_verifier(self, node: _Node) -> _Node:
        log_path = self.logs_dir / f"{node.spec.name}-verifier.log"
        return _Node(spec=node.spec, port=free_port(), data_dir=node.data_dir,
                     log_path=log_path, role="verifier")  # fmt: skip

    def _verifier_of(self, node: _Node) -> _Node | None:
        return next((v for v in self._verifiers if v.spec.name == node.spec.name), None)

    def _verifier_args(self, verifier: _Node) -> list[str]:
        setup = self._l1_setup
        assert setup is not None
        return [*VERIFIER_COMMAND, "--app-dir", str(verifier.spec.app_dir),
                "--l1-rpc", self.l1_rpc or "", "--inbox", "0x" + setup.inbox.hex(),
                "--portal", "0x" + setup.portal.hex(),
                "--from-l1-block", str(setup.from_block), "--da-dir",
                str(verifier.data_dir / "da"), "--port", str(verifier.port)]  # fmt: skip

    # -- the message bus

    def _start_bus(self) -> None:
        try:
            url = self._bus.start({n.spec.chain_id: n.data_dir for n in self._nodes})
        except (BusConfigError, NatsServerError) as exc:
            raise DevnetError(f"cannot start the message bus: {exc}") from None
        log.info("message bus: %s", url)

    # -- L1

    def _start_l1(self) -> str:
        if self.l1_rpc is not None:
            self._check_external_l1(self.l1_rpc)
            return self.l1_rpc
        self._anvil = AnvilProcess(log_dir=self.logs_dir)
        self._anvil.start(state_dir=self.data_dir / "l1", block_time=ANVIL_BLOCK_TIME,
                          extra_args=ANVIL_ARGS)  # fmt: skip
        log.info("anvil (pid %d) at %s", self._anvil.pid, self._anvil.rpc_url)
        return self._anvil.rpc_url

    @staticmethod
    def _check_external_l1(url: str) -> None:
        try:
            rpc_call(url, "eth_chainId", timeout=5.0)
        except (httpx.HTTPError, ValueError) as exc:
            raise DevnetError(f"the L1 at {url} does not answer eth_chainId: {exc}") from None

    def _check_l1(self) -> bool:
        """Restart Anvil on its port if it died; its chain comes back from its state file."""
        anvil = self._anvil
        if anvil is None or anvil.running():
            return False
        port = anvil.port
        log.warning("anvil exited; restarting it on port %s (log: %s)", port, anvil.log_path)
        anvil.stop()
        try:
            anvil.start(port=port, state_dir=self.data_dir / "l1", block_time=ANVIL_BLOCK_TIME,
                        extra_args=ANVIL_ARGS)  # fmt: skip
        except AnvilError as exc:
            log.error("anvil did not restart: %s", exc)
        return True

    # -- nodes

    def _make_node(self, index: int, spec: AppSpec) -> _Node:
        port = self._port_for(index)
        return _Node(
            spec=spec,
            port=port,
            data_dir=self.data_dir / "apps" / spec.name,
            log_path=self.logs_dir / f"{spec.name}.log",
        )

    def _port_for(self, index: int) -> int:
        if self._port_base is None:
            return free_port()
        port = self._port_base + index
        if not port_is_free(port):
            raise DevnetError(f"port {port} on 127.0.0.1 is already in use (from --port-base)")
        return port

    def _spawn(self, node: _Node) -> None:
        node.data_dir.mkdir(parents=True, exist_ok=True)
        args = [*self._node_command, "--app-dir", str(node.spec.app_dir)]
        args += ["--data-dir", str(node.data_dir), "--host", "127.0.0.1", "--port", str(node.port)]
        if self._bus.url:
            args += self._bus.node_arguments(node.spec.chain_id)
        da_env = self._da_env(node)
        if node.role == "verifier":
            args, da_env = self._verifier_args(node), {}
        if node.log_file is None:
            node.log_file = node.log_path.open("ab")
        env = _child_env(ROLLUP_L1_RPC=self.l1_rpc or "", **da_env)
        node.proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=node.log_file,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # a Ctrl-C meant for the supervisor does not reach it
        )
        node.started_at = time.monotonic()
        node.restart_at = None
        log.info("%s %s (pid %d) on %s", node.role, node.spec.name, node.proc.pid, node.rpc_url)

    def _wait_ready(self, node: _Node) -> None:
        assert node.proc is not None
        deadline = time.monotonic() + self._start_timeout
        while time.monotonic() < deadline:
            if self._stopping.is_set():
                raise DevnetError("interrupted while starting")
            if node.proc.poll() is not None:
                raise DevnetError(
                    f"node {node.spec.name} exited with code {node.proc.returncode} before "
                    f"answering on {node.rpc_url}; log tail ({node.log_path}):\n"
                    f"{_log_tail(node.log_path)}"
                )
            if node.role == "verifier" and _answers_health(node.rpc_url):
                return
            if node.role == "node" and _answers_chain_id(node.rpc_url, node.spec.chain_id):
                return
            time.sleep(0.1)
        raise DevnetError(
            f"node {node.spec.name} did not answer eth_chainId on {node.rpc_url} within "
            f"{self._start_timeout:g} s; log tail ({node.log_path}):\n{_log_tail(node.log_path)}"
        )

    def _check_node(self, node: _Node) -> bool:
        """Restart a crashed node, later and later if it keeps crashing. True if it restarted."""
        if node.proc is None or node.proc.poll() is None:
            return False
        now = time.monotonic()
        if node.restart_at is None:
            node.restart_at = now + self._restart_delay(node, now)
            log.warning(
                "node %s exited with code %s; restarting in %.0f s (log: %s)",
                node.spec.name,
                node.proc.returncode,
                node.restart_at - now,
                node.log_path,
            )
        if now < node.restart_at:
            return False
        node.restarts += 1
        self._spawn(node)
        return True

    @staticmethod
    def _restart_delay(node: _Node, now: float) -> float:
        if now - node.started_at >= STABLE_AFTER:
            return 0.0
        return float(min(MAX_RESTART_DELAY, 2 ** min(node.restarts, 5)))

    @staticmethod
    def _reap(node: _Node) -> None:
        if node.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                node.proc.wait(timeout=1.0)
        if node.log_file is not None:
            node.log_file.close()
            node.log_file = None

    # -- state file

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


def _record(node: _Node, verifier: _Node | None = None) -> AppRecord:
    return {
        "name": node.spec.name,
        "chain_id": node.spec.chain_id,
        "vm": node.spec.vm,
        "address": node.spec.address,
        "app_dir": str(node.spec.app_dir),
        "rpc_url": node.rpc_url,
        "port": node.port,
        "pid": node.proc.pid if node.proc is not None else 0,
        "data_dir": str(node.data_dir),
        "log": str(node.log_path),
        "restarts": node.restarts,
        "verifier": None if verifier is None else {
            "pid": verifier.proc.pid if verifier.proc is not None else 0,
            "port": verifier.port,
            "status_url": f"{verifier.rpc_url}/status",
            "log": str(verifier.log_path),
        },
    }


def _child_env(**extra: str) -> dict[str, str]:
    """Our environment, with unbuffered Python output (logs appear as they happen) and the
    keccak backend the project runs with unless one is chosen already."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", **extra)
    env.setdefault("ETH_HASH_BACKEND", "pysha3")
    return env


# ---- running it: foreground, detached --------------------------------------------------------


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


def add_da_options(parser: argparse.ArgumentParser) -> None:
    """--da, --da-mode, --verify and --l1-key-file, shared by `rollup up` and the detached
    supervisor."""
    parser.add_argument("--da", choices=DA_BACKENDS, default="local",
                        help="DA backend of every app's poster (default: local)")  # fmt: skip
    parser.add_argument("--da-mode", choices=("calldata", "blobs"), default="calldata",
                        help="the ethereum backend's mode (default: calldata)")  # fmt: skip
    parser.add_argument("--verify", action="store_true",
                        help="run a verifier per app (status on its own port)")  # fmt: skip
    parser.add_argument("--l1-key-file", type=Path, metavar="FILE",
                        help="with --l1-rpc: the key file (mode 0600) of the account that "
                             "deploys and owns the DA inbox and funds the batchers")  # fmt: skip


def check_l1_key_file(l1_rpc: str | None, da: str, l1_key_file: Path | None) -> None:
    """An external L1 with DA needs the owner's key file, readable by its user only
    (DevnetError, KeyFileError: one line each); our own Anvil makes its own."""
    if l1_rpc is not None and da != "none" and l1_key_file is None:
        raise DevnetError("--l1-rpc needs --l1-key-file FILE: the key (a file of mode 0600) "
                          "that deploys and owns the DA inbox and funds the batchers on that "
                          "L1; dev account 0 is not used there")  # fmt: skip
    if l1_key_file is not None:
        load_key(l1_key_file)


def da_arguments(da: str, da_mode: str, verify: bool,
                 l1_key_file: Path | None = None) -> list[str]:  # fmt: skip
    key_file = ["--l1-key-file", str(l1_key_file.resolve())] if l1_key_file else []
    return ["--da", da, "--da-mode", da_mode] + (["--verify"] if verify else []) + key_file


def spawn_detached(
    app_dirs: Sequence[Path],
    data_dir: Path,
    l1_rpc: str | None = None,
    port_base: int | None = None,
    da_options: Sequence[str] = (),
) -> subprocess.Popen[bytes]:
    """Start `python -m services.devnet run ...` in its own session, logging to devnet.log.
    `da_options`: `da_arguments(...)`, passed on as they are."""
    data_dir = data_dir.resolve()
    logs_dir = data_dir / "logs"
    logs_dir.mkdir(parents=True, exist_ok=True)
    args = [sys.executable, "-m", "services.devnet", "run", "--data-dir", str(data_dir)]
    if l1_rpc is not None:
        args += ["--l1-rpc", l1_rpc]
    if port_base is not None:
        args += ["--port-base", str(port_base)]
    args += [*da_options, *(str(Path(d).resolve()) for d in app_dirs)]
    with (logs_dir / "devnet.log").open("ab") as log_file:
        return subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=_child_env(),
            start_new_session=True,
        )


def wait_detached(proc: subprocess.Popen[bytes], data_dir: Path, timeout: float) -> DevnetState:
    """Wait until the detached supervisor `proc` records a ready devnet; raise if it fails."""
    data_dir = data_dir.resolve()
    devnet_log = data_dir / "logs" / "devnet.log"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DevnetError(
                f"the devnet exited with code {proc.returncode} while starting; "
                f"log tail ({devnet_log}):\n{_log_tail(devnet_log)}"
            )
        state = read_state(data_dir)
        if state is not None and state["supervisor_pid"] == proc.pid:
            return state
        time.sleep(0.1)
    terminate_pids([proc.pid])
    raise DevnetError(
        f"the devnet did not come up within {timeout:g} s; log tail ({devnet_log}):\n"
        f"{_log_tail(devnet_log)}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m services.devnet run [--data-dir D] [--l1-rpc URL] [--port-base N] APP_DIR...`

    The detached supervisor. Users run `rollup up --detach`, which starts this.
    """
    parser = argparse.ArgumentParser(prog="python -m services.devnet")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="supervise a devnet until SIGTERM")
    run.add_argument("app_dirs", nargs="+", type=Path, metavar="APP_DIR")
    run.add_argument("--data-dir", type=Path, default=Path(".rollup"))
    run.add_argument("--l1-rpc")
    run.add_argument("--port-base", type=int)
    add_da_options(run)
    add_bus_option(run)
    args = parser.parse_args(argv)
    configure_logging("info")  # text, or JSON with ROLLUP_LOG_FORMAT=json (services/logs.py)
    try:
        devnet = Devnet(load_app_specs(args.app_dirs), args.data_dir, args.l1_rpc, args.port_base,
                        da=args.da, da_mode=args.da_mode, verify=args.verify,
                        bus=args.bus, l1_key_file=args.l1_key_file)  # fmt: skip
        serve(devnet)
    except (DevnetError, AnvilError) as exc:
        log.error("%s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
