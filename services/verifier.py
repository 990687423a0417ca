"""The verifier process of one app, and what `rollup verify` runs.

    python -m services.verifier --app-dir DIR --l1-rpc URL --inbox ADDR [--portal ADDR]
                                [--da-dir DIR ...] [--from-l1-block N] [--portal-from-block N]
                                [--port N] [--once] [--json]

It reads the L1 inbox and the DA backends only (the `local` stores read-only from --da-dir,
the `ethereum` one through the L1) and re-derives the app's chain with da/verifier.py. The
inbound cross-app messages are checked against their source chains' batches on the same
inbox, so it needs those chains' DA data too: on the `ethereum` backend it is on the L1
already; with `local` stores, give each source app's store as one more --da-dir (a batch is
found in whichever holds it). A first --da-dir in a devnet's layout (DATA/apps/NAME/da) brings
the stores of the devnet's other apps along (`rollup verify` passes them all itself). Until a
source's block is posted and readable the status says `waiting` and names it.
The L1 deposits each block executes come from the L1 itself: with --portal the verifier reads
the Portal's events (from --portal-from-block, default --from-l1-block: at or before the
Portal's first deposit) and checks each block's against them and the sequencing window of the
app's rollup.toml (da/l1.py); without it, a block with deposits makes it wait. Either way it
checks each block's L1 origin against the L1's block hashes and follows L1 reorgs. The VM,
the genesis header and the genesis state come from the sequencer's own constructor (a
`Sequencer` opened on a scratch database), so a verifier builds blocks exactly as the app's
sequencer does, for either VM. With --port it serves, on 127.0.0.1 (to a Host header that
names the loopback):
    GET /status    the status as JSON ("message": "in sync at block N" or "diverged at ...")
    GET /metrics   Prometheus text (services/metrics.py: rollup_verifier_*)
    GET /health    200 once it runs
--once verifies what the L1 holds now, prints the result and exits 0 (in sync) or 1
(diverged, or it could not finish). Its settings come from flags, then ROLLUP_* variables, then
the app's rollup.toml (services/settings.py); one it cannot use is one line and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

import orjson
import requests
import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from web3.exceptions import BlockNotFound

from bridge.inbox import BatchInbox
from bridge.l1 import L1Client, L1Unavailable
from bridge.portal import PortalDeposits
from da.backend import DABackend, DARef
from da.errors import DAError, DataNotFound
from da.ethereum import EthereumDA
from da.l1 import L1Blocks, L1Inputs
from da.local import LocalDA
from da.verifier import Replayer, Verifier
from rollup.errors import RollupError
from rollup.manifest import parse_manifest
from sequencer.node import Sequencer
from services.apps import load_app
from services.cliargs import OneLineParser
from services.logs import configure_logging
from services.metrics import CONTENT_TYPE, Metrics, VerifierCollector
from services.node import tune_gc
from services.settings import add_arguments, load_settings, require

__all__ = [
    "build_replayer",
    "LocalStores",
    "L1Chain",
    "devnet_neighbours",
    "open_verifier",
    "status_app",
    "main",
    "VERIFIER_SETTINGS",
]

log = logging.getLogger(__name__)

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")  # it serves on 127.0.0.1 only


def build_replayer(app_dir: Path) -> tuple[str, Replayer]:
    """(app name, a replayer at genesis with the app's VM), built by the sequencer's own
    constructor."""
    bundle = load_app(app_dir)
    with tempfile.TemporaryDirectory(prefix="rollup-verifier-") as scratch:
        node = Sequencer(bundle.manifest, bundle.code, f"sqlite:///{scratch}/genesis.db")
        try:
            if not node.state.complete:
                raise RollupError("the genesis state did not load whole")
            state = dict(node.state.items())
            replayer = Replayer(node.chain_id, node.head, state, node.tree, node.vm)
            return bundle.manifest.name, replayer
        finally:
            node.close()


class LocalStores:
    """The `local` backend over several read-only stores (the app's and its sources'): the
    data under a reference comes from the first store that has it (a `local` reference is
    the keccak of its data, so any store that has it has the same bytes)."""

    name = "local"

    def __init__(self, stores: Sequence[LocalDA]) -> None:
        self.stores = list(stores)
        self.max_blob_size = min(s.max_blob_size for s in self.stores)

    def submit(self, data: bytes) -> DARef:
        raise DAError("a verifier's local stores are read-only")

    def get(self, ref: DARef) -> bytes:
        for store in self.stores[:-1]:
            try:
                return store.get(ref)
            except DataNotFound:
                continue
        return self.stores[-1].get(ref)


class L1Chain:
    """`da.l1.L1Blocks` over an L1 client: what a verifier without a Portal still reads (origins
    and reorgs)."""

    def __init__(self, l1: L1Client) -> None:
        self.l1 = l1

    def l1_block_number(self, tag: str = "latest") -> int:
        return self.l1.block_number(tag)

    def l1_block_hash(self, number: int) -> bytes | None:
        try:
            block = self.l1.w3.eth.get_block(number)
        except BlockNotFound:
            return None
        except (requests.RequestException, OSError) as exc:
            raise L1Unavailable(f"L1 unreachable (block {number}): {exc}") from None
        return bytes(block["hash"]) if block and block.get("hash") else None


def devnet_neighbours(store: Path) -> list[Path]:
    """The local stores of the other apps of the devnet `store` belongs to, when it is laid
    out as a devnet's (DATA/apps/NAME/da, services/devnet.py); none otherwise."""
    apps = store.parent.parent
    if store.name != "da" or apps.name != "apps":
        return []
    return sorted(d for d in apps.glob("*/da") if d.is_dir() and d != store)


def open_verifier(
    app_dir: Path,
    l1_rpc: str,
    inbox: bytes,
    da_dirs: Sequence[Path],
    from_l1_block: int = 0,
    portal: bytes | None = None,
    portal_from_block: int | None = None,
) -> tuple[str, Verifier]:
    """(app name, its verifier) reading the L1 at `l1_rpc` (its inbox, its block hashes and,
    given `portal`, the app's deposits) and the local stores `da_dirs` (the app's own first,
    then those of the apps it receives messages from; the first one's devnet neighbours are
    added)."""
    manifest = parse_manifest((app_dir / "rollup.toml").read_text(encoding="utf-8"))
    name, replayer = build_replayer(app_dir)
    l1 = L1Client(l1_rpc)
    deposits = PortalDeposits(l1, portal) if portal is not None else None
    blocks: L1Blocks = deposits if deposits is not None else L1Chain(l1)
    inputs = L1Inputs(blocks, deposits, manifest.bridge.sequencing_window, portal_from_block)
    backends: dict[str, DABackend] = {"ethereum": EthereumDA(l1, replayer.chain_id)}
    if da_dirs:
        stores = [Path(d).resolve() for d in da_dirs]
        unique = list(dict.fromkeys([*stores, *devnet_neighbours(stores[0])]))
        backends["local"] = LocalStores([LocalDA(d, readonly=True) for d in unique])
    rebuild = lambda: build_replayer(app_dir)[1]  # noqa: E731 - the owner's revert: start over
    return name, Verifier(
        replayer, BatchInbox(l1, inbox), backends, from_l1_block, rebuild=rebuild, l1=inputs
    )


# ---- status ----


def status_app(
    verifier: Verifier, app: str, extra: Mapping[str, object] | None = None
) -> Starlette:
    """/status, /metrics (services/metrics.py) and /health, for Host headers that name the
    loopback only: a page on another name that resolves here (DNS rebinding) reads nothing."""
    registry = Metrics(app)
    registry.add(VerifierCollector(app, verifier))

    async def status(_request: Request) -> Response:
        body = dict(verifier.status().as_dict(), app=app, **(extra or {}))
        return Response(orjson.dumps(body), media_type="application/json")

    async def metrics(_request: Request) -> Response:
        return Response(registry.render(), headers={"content-type": CONTENT_TYPE})

    async def health(_request: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(
        routes=[Route("/status", status), Route("/metrics", metrics), Route("/health", health)],
        middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=list(LOOPBACK_HOSTS))],
    )


# ---- running ----


def run_once(verifier: Verifier, timeout: float, as_json: bool) -> int:
    status = verifier.verify_until_idle(timeout)
    if as_json:
        print(json.dumps(status.as_dict()))
    else:
        print(status.message + (f" (waiting: {status.waiting})" if status.waiting else ""))
    return 0 if status.state == "in_sync" and status.waiting is None else 1


def serve(verifier: Verifier, app: str, port: int, poll_s: float = 0.5) -> None:
    """Verify in a thread and serve the status until SIGINT/SIGTERM."""
    stop = threading.Event()
    worker = threading.Thread(
        target=verifier.run, args=(stop, poll_s), name="verifier", daemon=True
    )
    worker.start()
    # log_config=None: uvicorn's loggers go through ours (services/logs.py), not its own.
    config = uvicorn.Config(
        status_app(verifier, app),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        log_config=None,
        lifespan="off",
    )
    try:
        uvicorn.Server(config).run()
    finally:
        stop.set()
        worker.join(10.0)
        verifier.close()


# The settings this process reads (services/settings.py).
VERIFIER_SETTINGS = (
    "app_dir",
    "l1.rpc",
    "da.inbox",
    "l1.portal",
    "l1.portal_from_block",
    "verifier",
    "log",
)


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(
        prog="python -m services.verifier",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser, VERIFIER_SETTINGS)
    parser.add_argument("--once", action="store_true", help="verify what is posted, then exit")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args)
        require(settings, "app_dir", "l1.rpc", "da.inbox")
        configure_logging(settings.log.level, settings.log.format)
        assert settings.app_dir and settings.l1.rpc and settings.da.inbox
        options = settings.verifier
        name, verifier = open_verifier(
            settings.app_dir,
            settings.l1.rpc,
            settings.da.inbox,
            options.da_dirs,
            options.from_l1_block,
            settings.l1.portal,
            settings.l1.portal_from_block,
        )
    except (RollupError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    tune_gc()  # as the node does: the genesis state out of the collector's sight
    if args.once or options.port is None:
        try:
            return run_once(verifier, options.timeout, args.json)
        finally:
            verifier.close()
    serve(verifier, name, options.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
