"""The DA side of the `rollup` command: `rollup verify`, and DA fields of `rollup status`.

    rollup verify APP [--data-dir DIR] [--l1-rpc URL] [--inbox ADDR] [--portal ADDR]
                      [--da-dir DIR ...] [--from-l1-block N] [--portal-from-block N]
                      [--follow [--port N]] [--json]
APP is an app directory, or the name of an app in the running devnet. Without --l1-rpc, --inbox
and --portal they come from the devnet's state file, as does the app's local DA store (the
other apps' stores beside it are read too: inbound cross-app messages are checked against their
source chains' batches). It re-derives the app's chain from the L1 inbox, the DA data and the
Portal's deposits (services/verifier.py), prints "in sync at block N" (exit 0), with "(waiting:
...)" when it cannot go on yet (a source chain has not posted the block a message comes from,
say; exit 1), or "diverged at block N: reason" (exit 1); --follow keeps verifying and prints
each change (and serves /status and /metrics with --port).
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from rollup.errors import RollupError
from services.devnet import AppRecord, DevnetState, read_state
from services.rpcclient import RpcCallError, RpcUnavailable, rpc_call
from services.verifier import open_verifier, run_once, serve

__all__ = ["add_verify_parser", "cmd_verify", "app_da_status"]


class VerifyError(RollupError):
    """What `rollup verify` needs is missing (exit code 1)."""


def add_verify_parser(sub: Any, data_dir_option: Any) -> None:
    verify = sub.add_parser("verify", help="re-derive an app from the L1 and DA, and check it")
    verify.add_argument("app", metavar="APP", help="app directory, or app name in the devnet")
    data_dir_option(verify)
    verify.add_argument("--l1-rpc", metavar="URL", help="default: the devnet's L1")
    verify.add_argument("--inbox", metavar="ADDR", help="default: the devnet's BatchInbox")
    verify.add_argument(
        "--portal",
        metavar="ADDR",
        help="default: the devnet's Portal (without one, blocks with deposits wait)",
    )
    verify.add_argument(
        "--da-dir",
        type=Path,
        action="append",
        help="a local DA store: the app's, then its source apps' (default: the devnet's stores)",
    )
    verify.add_argument("--from-l1-block", type=int, default=None)
    verify.add_argument(
        "--portal-from-block",
        type=int,
        default=None,
        help="read deposits from here (default: --from-l1-block)",
    )
    verify.add_argument("--follow", action="store_true", help="keep verifying new batches")
    verify.add_argument("--port", type=int, help="with --follow: serve /status and /metrics")
    verify.add_argument("--json", action="store_true", help="print the status as JSON")
    verify.add_argument("--timeout", type=float, default=600.0)
    verify.set_defaults(handler=cmd_verify)


def cmd_verify(args: argparse.Namespace) -> int:
    state = read_state(args.data_dir.resolve())
    record = _find_app(state, args.app)
    app_dir = Path(record["app_dir"]) if record else Path(args.app)
    if not (app_dir / "rollup.toml").is_file():
        raise VerifyError(
            f"{args.app} is neither an app directory nor an app of the devnet in {args.data_dir}"
        )
    da = state.get("da") if state else None
    l1_rpc = args.l1_rpc or (state["l1"]["rpc_url"] if state else None)
    inbox = args.inbox or (da["inbox"] if da else None)
    if not l1_rpc or not inbox:
        raise VerifyError("no devnet with DA is recorded here: pass --l1-rpc and --inbox")
    portal = args.portal or (da.get("portal") if da else None)
    da_dirs = args.da_dir or ([Path(record["data_dir"]) / "da"] if record else [])
    from_block = (
        args.from_l1_block if args.from_l1_block is not None else (da["from_block"] if da else 0)
    )
    name, verifier = open_verifier(
        app_dir,
        l1_rpc,
        _address(inbox),
        da_dirs,
        from_block,
        _address(portal) if portal else None,
        args.portal_from_block,
    )
    if not args.follow:
        try:
            return run_once(verifier, args.timeout, args.json)
        finally:
            verifier.close()
    if args.port is not None:
        serve(verifier, name, args.port)
        return 0
    return _follow(verifier, args.json)


def _address(text: str) -> bytes:
    try:
        raw = bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        raw = b""
    if len(raw) != 20:
        raise VerifyError(f"{text} is not an address")
    return raw


def _follow(verifier: Any, as_json: bool) -> int:
    stop = threading.Event()
    worker = threading.Thread(target=verifier.run, args=(stop,), daemon=True)
    worker.start()
    last = None
    try:
        while worker.is_alive():
            status = verifier.status()
            shown = (
                json.dumps(status.as_dict())
                if as_json
                else status.message + (f" (waiting: {status.waiting})" if status.waiting else "")
            )
            if shown != last:
                print(shown, flush=True)
                last = shown
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        verifier.close()
    return 0 if verifier.status().state == "in_sync" else 1


def _find_app(state: DevnetState | None, app: str) -> AppRecord | None:
    if state is None:
        return None
    wanted = Path(app).resolve()
    for record in state["apps"]:
        if record["name"] == app or Path(record["app_dir"]) == wanted:
            return record
    return None


def app_da_status(record: AppRecord) -> dict[str, Any]:
    """An app's `safe` and `finalized` blocks (from its node) and its verifier's status."""
    verifier = record.get("verifier")
    return {
        "safe": _tag(record["rpc_url"], "safe"),
        "finalized": _tag(record["rpc_url"], "finalized"),
        "verifier": _verifier_status(verifier["status_url"]) if verifier else None,
    }


def _tag(rpc_url: str, tag: str) -> int | None:
    try:
        block = rpc_call(rpc_url, "eth_getBlockByNumber", tag, False, timeout=2.0)
    except (RpcUnavailable, RpcCallError):
        return None
    if not isinstance(block, dict) or not isinstance(block.get("number"), str):
        return None
    return int(block["number"], 16)


def _verifier_status(url: str) -> dict[str, Any]:
    try:
        with httpx.Client(trust_env=False, timeout=2.0) as client:
            body = client.get(url).json()
    except (httpx.HTTPError, ValueError) as exc:
        return {"status": "unreachable", "message": f"verifier unreachable: {exc}"}
    return body if isinstance(body, dict) else {"status": "unreachable", "message": str(body)}
