"""The devnet's L1 and what it holds for the apps.

`DevnetL1`: our own Anvil on loopback, automining and also mining a block a second
(--mixed-mining, --slots-in-an-epoch 1, so `finalized` trails the head by two blocks and
posted batches become final on their own), its chain kept in `DATA/l1/anvil-state.json` and
restarted on its port if it dies; or an external L1 (`--l1-rpc`), which must answer.

`DevnetDA`: the BatchInbox and the Portal on that L1 and a funded batcher per app
(services/l1setup.py); what each node's DA poster and L1 follower are told (by environment:
the batcher's key file, never the key) and what each verifier is given.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from rollup.errors import RollupError
from rollup.genesis import DEV_KEYS
from services.anvil import AnvilError, AnvilProcess
from services.devnet.errors import DevnetError
from services.devnet.specs import AppSpec
from services.devnet.state import DARecord, L1Record
from services.l1setup import BatcherSpec, L1Setup, prepare_l1
from services.rpcclient import RpcCallError, RpcUnavailable, rpc_call

__all__ = ["ANVIL_ARGS", "ANVIL_BLOCK_TIME", "DevnetDA", "DevnetL1", "VERIFIER_COMMAND"]

log = logging.getLogger(__name__)

# Anvil as the devnet's L1: automine plus a block a second, finality two blocks behind.
ANVIL_BLOCK_TIME = 1.0
ANVIL_ARGS = ("--mixed-mining", "--slots-in-an-epoch", "1")
VERIFIER_COMMAND = (sys.executable, "-m", "services.verifier")


class DevnetL1:
    """Anvil in `data_dir/l1` with its log in `logs_dir`, or the external L1 at `rpc_url`."""

    def __init__(self, data_dir: Path, logs_dir: Path, rpc_url: str | None = None) -> None:
        self.state_dir, self.logs_dir = data_dir / "l1", logs_dir
        self.rpc_url = rpc_url
        self.anvil: AnvilProcess | None = None

    def start(self) -> str:
        """Start Anvil (or check the external L1 answers); the L1's URL."""
        if self.rpc_url is not None:
            try:
                rpc_call(self.rpc_url, "eth_chainId", timeout=5.0)
            except (RpcUnavailable, RpcCallError) as exc:
                raise DevnetError(
                    f"the L1 at {self.rpc_url} does not answer eth_chainId: {exc}"
                ) from None
            return self.rpc_url
        self.anvil = AnvilProcess(log_dir=self.logs_dir)
        self._start_anvil()
        log.info("anvil (pid %d) at %s", self.anvil.pid, self.anvil.rpc_url)
        self.rpc_url = self.anvil.rpc_url
        return self.rpc_url

    def check(self) -> bool:
        """Restart Anvil on its port if it died (its chain comes back from its state file);
        True if it did."""
        anvil = self.anvil
        if anvil is None or anvil.running():
            return False
        port = anvil.port
        log.warning("anvil exited; restarting it on port %s (log: %s)", port, anvil.log_path)
        anvil.stop()
        try:
            self._start_anvil(port)
        except AnvilError as exc:
            log.error("anvil did not restart: %s", exc)
        return True

    def stop(self) -> None:
        if self.anvil is not None:
            self.anvil.stop()
            self.anvil = None

    def record(self) -> L1Record:
        record: L1Record = {"rpc_url": self.rpc_url or "", "pid": None, "log": None}
        if self.anvil is not None and self.anvil.running():
            record["pid"] = self.anvil.pid
            record["log"] = str(self.anvil.log_path)
        return record

    def _start_anvil(self, port: int | None = None) -> None:
        assert self.anvil is not None
        self.anvil.start(
            port=port, state_dir=self.state_dir, block_time=ANVIL_BLOCK_TIME, extra_args=ANVIL_ARGS
        )


class DevnetDA:
    """The apps' DA on the L1: backend "local", "ethereum" or "none" (nothing to set up)."""

    def __init__(self, backend: str, mode: str, l1_key_file: Path | None) -> None:
        self.backend, self.mode, self.l1_key_file = backend, mode, l1_key_file
        self.setup: L1Setup | None = None

    def prepare(self, l1: DevnetL1, apps: Sequence[tuple[AppSpec, Path]]) -> None:
        """Deploy (or find) the inbox and the Portal, and a funded batcher for each app
        (spec, data dir); on our own Anvil, dev account 0 funds the owner and does no more."""
        if self.backend == "none":
            return
        assert l1.rpc_url is not None
        batchers = [
            BatcherSpec(spec.name, spec.chain_id, data_dir / "batcher.key")
            for spec, data_dir in apps
        ]
        funder = DEV_KEYS[0] if l1.anvil is not None else None
        try:
            self.setup = prepare_l1(l1.rpc_url, batchers, l1.state_dir, self.l1_key_file, funder)
        except (RollupError, OSError, subprocess.SubprocessError) as exc:
            raise DevnetError(
                f"cannot set up the DA inbox on the L1 at {l1.rpc_url}: {exc}"
            ) from None
        log.info(
            "DA: %s backend, inbox 0x%s on the L1, owned by 0x%s",
            self.backend,
            self.setup.inbox.hex(),
            self.setup.owner.hex(),
        )

    def record(self) -> DARecord | None:
        setup = self.setup
        if setup is None:
            return None
        return {
            "backend": self.backend,
            "mode": self.mode,
            "inbox": "0x" + setup.inbox.hex(),
            "from_block": setup.from_block,
            "owner": "0x" + setup.owner.hex(),
            "portal": "0x" + setup.portal.hex(),
        }

    def node_env(self, name: str) -> dict[str, str]:
        """The node's DA poster and L1 follower settings (services/da_node.py, l1follow.py):
        every node follows the devnet's Portal, whose deposits start after the inbox's block."""
        setup = self.setup
        if setup is None:
            return {}
        return {
            "ROLLUP_DA": self.backend,
            "ROLLUP_DA_MODE": self.mode,
            "ROLLUP_INBOX": "0x" + setup.inbox.hex(),
            "ROLLUP_INBOX_BLOCK": str(setup.from_block),
            "ROLLUP_BATCHER_KEY_FILE": str(setup.batchers[name]),
            "ROLLUP_PORTAL": "0x" + setup.portal.hex(),
            "ROLLUP_PORTAL_BLOCK": str(setup.from_block),
        }

    def verifier_command(self, l1_rpc: str, app_dir: Path, data_dir: Path, port: int) -> list[str]:
        """`python -m services.verifier ...` for the app in `app_dir` (its node's data dir)."""
        setup = self.setup
        assert setup is not None
        return [
            *VERIFIER_COMMAND,
            "--app-dir",
            str(app_dir),
            "--l1-rpc",
            l1_rpc,
            "--inbox",
            "0x" + setup.inbox.hex(),
            "--portal",
            "0x" + setup.portal.hex(),
            "--from-l1-block",
            str(setup.from_block),
            "--da-dir",
            str(data_dir / "da"),
            "--port",
            str(port),
        ]
