"""The processes a benchmark measures: a fresh node of an app, and Anvil as the peer.

- `NodeUnderTest`: a node of the token template (or any app `render` writes) in a temp dir,
  run by `services.launch.NodeProcess` exactly as an operator runs it.
- `AnvilUnderTest`: Anvil with default automine (`services.anvil.AnvilProcess`, chain 31337).
- `Target`: what the workload code needs of either: URL, chain id, PID (for py-spy).
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import BenchError, rpc
from services.anvil import AnvilProcess
from services.launch import NodeProcess
from services.scaffold import scaffold

__all__ = ["ANVIL_CHAIN_ID", "AnvilUnderTest", "NodeUnderTest", "Target", "render_token_app"]

ANVIL_CHAIN_ID = 31337


def render_token_app(app_dir: Path, name: str = "bench", chain_id: int = 901_001) -> Path:
    """The token template rendered into `app_dir`."""
    return scaffold(app_dir, "token", name, chain_id)


@dataclass
class Target:
    """Something that answers JSON-RPC: our node or the Anvil peer."""

    name: str
    url: str
    chain_id: int
    pid: int | None
    nudge: bool = False  # Anvil: mine stuck ready transactions (see `benchmarks.http.Nudge`)


class NodeUnderTest(contextlib.AbstractContextManager["NodeUnderTest"]):
    """A fresh token-app node in a temp dir; removed on exit unless `keep` is set."""

    def __init__(
        self, keep: bool = False, render: Callable[[Path], Path] = render_token_app
    ) -> None:
        """`render` writes the app into the directory it is given (default: the token
        template) and returns the app directory."""
        self._tmp = Path(tempfile.mkdtemp(prefix="rollup-bench-"))
        self.keep = keep
        self.process = NodeProcess(render(self._tmp / "app"), self._tmp / "data")

    def __enter__(self) -> NodeUnderTest:
        try:
            self.process.start()
        except BaseException:
            self._cleanup()
            raise
        return self

    def target(self) -> Target:
        chain_id = int(rpc(self.process.url, "eth_chainId"), 16)
        return Target("node", self.process.url, chain_id, self.process.pid)

    def log_tail(self) -> str:
        return self.process.log_tail()

    @contextlib.contextmanager
    def log_tail_on_failure(self) -> Iterator[None]:
        """A BenchError raised inside gets the tail of the node's log appended."""
        try:
            yield
        except BenchError as exc:
            raise BenchError(f"{exc}\nnode log tail:\n{self.log_tail()}") from None

    def __exit__(self, *exc: object) -> None:
        self.process.stop()
        self._cleanup()

    def _cleanup(self) -> None:
        if not self.keep:
            shutil.rmtree(self._tmp, ignore_errors=True)


class AnvilUnderTest(contextlib.AbstractContextManager["AnvilUnderTest"]):
    """Anvil on loopback with default automine (every transaction mined as it arrives);
    `hardfork` as Anvil spells it (None: Anvil's default)."""

    def __init__(self, hardfork: str | None = None) -> None:
        self._tmp = Path(tempfile.mkdtemp(prefix="rollup-bench-anvil-"))
        self.hardfork = hardfork
        self.process = AnvilProcess(log_dir=self._tmp)

    def __enter__(self) -> AnvilUnderTest:
        try:
            self.process.start(chain_id=ANVIL_CHAIN_ID, hardfork=self.hardfork)
        except BaseException:
            shutil.rmtree(self._tmp, ignore_errors=True)
            raise
        return self

    def target(self) -> Target:
        return Target("anvil", self.process.rpc_url, ANVIL_CHAIN_ID, self.process.pid, nudge=True)

    def __exit__(self, *exc: object) -> None:
        self.process.stop()
        shutil.rmtree(self._tmp, ignore_errors=True)
