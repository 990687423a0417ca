"""The `rollup` command: create apps from templates and run them on a local devnet.

    rollup new NAME --template token [--dir DIR] [--chain-id N]
    rollup up [APP_DIR ...] [--detach] [--data-dir DIR] [--l1-rpc URL --l1-key-file FILE]
              [--port-base N] [--da local|ethereum|none] [--da-mode calldata|blobs] [--verify]
              [--bus embedded|nats|nats://HOST:PORT] [--admin-port N]
    rollup status [--json] [--data-dir DIR]
    rollup admin [--data-dir DIR] [--host H] [--port N]   the REST admin API on its own
    rollup verify APP [--follow] [--json] ...  (services/da_cli.py)
    rollup bridge deposit|withdraw|finalize|status|escape APP ...  (services/bridge_cli.py)
    rollup down [--data-dir DIR]
    rollup abi APP_DIR
    rollup l1 deploy --l1-rpc URL --key-file FILE [--json]
    rollup bench ...            (arguments go to benchmarks.cli)

Exit codes: 0 ok, 1 the operation failed, 2 bad usage (argparse's own code, also used when
`new` is given a bad name or a target that is not empty).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bridge.deploy import deploy_bridge
from bridge.l1 import L1Client, L1Error
from bridge.solc import SolcError
from rollup.errors import Action, RollupError
from rollup.manifest import APP_NAME, MAX_CHAIN_ID, default_chain_id, parse_manifest
from services.admin.server import add_admin_options, url_of
from services.admin.server import serve as serve_admin
from services.admin.tokens import ensure_tokens
from services.anvil import AnvilError
from services.apps import load_app
from services.bridge_cli import add_bridge_parser, status_bridge
from services.bus.devnet import add_bus_option, bus_arguments
from services.cliargs import OneLineParser
from services.da_cli import add_verify_parser, app_da_status
from services.devnet import (
    NODE_START_TIMEOUT,
    Devnet,
    DevnetError,
    DevnetState,
    add_admin_port_option,
    add_da_options,
    admin_arguments,
    check_l1_key_file,
    da_arguments,
    is_running,
    load_app_specs,
    read_state,
    serve,
    spawn_detached,
    stop_recorded,
    wait_detached,
)
from services.keys import load_key
from services.logs import configure_logging
from services.rpcclient import RpcCallError, RpcUnavailable, rpc_call
from services.scaffold import MANIFEST, TEMPLATES, render, write_files
from services.settings import writable_dir
from vm.evm.artifact import Artifact
from vm.native.abi_json import app_abi
from vm.native.loader import load_app_class

__all__ = ["main"]

DEFAULT_DATA_DIR = Path(".rollup")
DEFAULT_APP_DIR = Path("examples/token")
DETACH_TIMEOUT = 20.0 + NODE_START_TIMEOUT + 30.0  # Anvil, the nodes (in parallel), slack


class UsageError(RollupError):
    """Bad input from the user: exit code 2."""

    action = Action.FIX_INPUT


class Failure(RollupError):
    """The operation could not be done: exit code 1."""


# ---- rollup new -----------------------------------------------------------------------------


def cmd_new(args: argparse.Namespace) -> int:
    name: str = args.name
    if not APP_NAME.match(name):
        raise UsageError(
            f"invalid app name {name!r}: use 1-32 chars of [a-z0-9-], not starting with '-'"
        )
    chain_id = args.chain_id if args.chain_id is not None else default_chain_id(name)
    if not 1 <= chain_id <= MAX_CHAIN_ID:
        raise UsageError(f"chain id {chain_id} is outside 1..{MAX_CHAIN_ID}")
    target: Path = (args.dir or Path(".")) / name
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise UsageError(f"{target} already exists and is not empty; refusing to overwrite it")
    files = render(args.template, name, chain_id)
    _check_manifest(files)
    write_files(target, files)
    print(
        f"Created app {name!r} (chain id {chain_id}) in {target}/ from template "
        f"{args.template!r}.\n\nNext steps:\n"
        f"  cd {target} && pytest          # the app's tests, on an in-process chain\n"
        f"  rollup up {target}             # run it on a local devnet\n"
        f"  rollup abi {target}            # its ABI, for ethers, web3.py or a wallet"
    )
    return 0


def _check_manifest(files: dict[Path, str]) -> None:
    """A template must render into a manifest that parses; catch it before writing anything."""
    try:
        parse_manifest(files[MANIFEST])
    except (KeyError, RollupError) as exc:
        raise Failure(f"the template does not render a valid rollup.toml: {exc}") from None


# ---- rollup up / down / status --------------------------------------------------------------


def cmd_up(args: argparse.Namespace) -> int:
    app_dirs: list[Path] = args.app_dirs or _default_app_dirs()
    specs = load_app_specs(app_dirs)
    check_l1_key_file(args.l1_rpc, args.da, args.l1_key_file)  # before anything starts
    data_dir = writable_dir(args.data_dir.resolve())
    _configure_logging(args.verbose)
    state = read_state(data_dir)
    if state is not None and is_running(state):
        raise Failure(
            f"a devnet is already running from {data_dir}; stop it with "
            f"`rollup down --data-dir {args.data_dir}`"
        )
    if args.detach:
        da_options = da_arguments(args.da, args.da_mode, args.verify, args.l1_key_file)
        da_options += bus_arguments(args.bus) + admin_arguments(args.admin_port)
        proc = spawn_detached(app_dirs, data_dir, args.l1_rpc, args.port_base, da_options)
        state = wait_detached(proc, data_dir, DETACH_TIMEOUT)
        _print_up(
            state,
            f"Detached (supervisor pid {state['supervisor_pid']}). Stop it with: "
            f"rollup down --data-dir {args.data_dir}",
        )
        return 0
    devnet = Devnet(
        specs,
        data_dir,
        args.l1_rpc,
        args.port_base,
        da=args.da,
        da_mode=args.da_mode,
        verify=args.verify,
        bus=args.bus,
        l1_key_file=args.l1_key_file,
        admin_port=args.admin_port,
    )
    serve(devnet, on_ready=lambda s: _print_up(s, "Press Ctrl-C to stop."))
    print("Stopped.")
    return 0


def _configure_logging(verbose: bool) -> None:
    """Only the commands that run processes log; the others just print their result."""
    configure_logging("info" if verbose else "warning")


def _default_app_dirs() -> list[Path]:
    if DEFAULT_APP_DIR.is_dir():
        return [DEFAULT_APP_DIR]
    raise UsageError(
        f"no APP_DIR given and no {DEFAULT_APP_DIR} here; "
        "create one with `rollup new NAME --template token`"
    )


def _print_up(state: DevnetState, how_to_stop: str) -> None:
    headers = ["NAME", "CHAIN ID", "VM", "RPC URL", "APP ADDRESS"]
    rows = [
        [a["name"], str(a["chain_id"]), a["vm"], a["rpc_url"], a["address"]] for a in state["apps"]
    ]
    print(format_table(headers, rows))
    print(f"\nL1 RPC: {state['l1']['rpc_url']}")
    print(f"Bus:    {state['bus']['url']}")
    admin = state.get("admin")
    if admin:
        print(f"Admin:  {admin['url']} (token: {admin['token_file']})")
    print(f"Logs:   {state['logs_dir']}/")
    print(how_to_stop, flush=True)


def cmd_down(args: argparse.Namespace) -> int:
    if read_state(args.data_dir.resolve()) is None:
        print(f"No devnet recorded in {args.data_dir}; nothing to stop.")
        return 0
    _configure_logging(args.verbose)
    state = stop_recorded(args.data_dir.resolve())
    if state is None:  # it stopped by itself in the meantime
        return 0
    names = ", ".join(a["name"] for a in state["apps"]) or "no apps"
    print(f"Stopped the devnet in {args.data_dir} ({names}).")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    state = read_state(args.data_dir.resolve())
    if state is None or not is_running(state):
        stale = " (a stale state file is there: `rollup down` cleans it)" if state else ""
        raise Failure(
            f"no devnet is running from {args.data_dir}{stale}; start one with `rollup up`"
        )
    report = status_report(state)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    headers = ["NAME", "CHAIN ID", "VM", "HEAD", "SAFE", "FINAL", "RPC URL", "APP ADDRESS"]
    rows = [
        [
            a["name"],
            str(a["chain_id"]),
            a["vm"],
            _head_text(a["head"]),
            _head_text(a["safe"]),
            _head_text(a["finalized"]),
            a["rpc_url"],
            a["address"],
        ]
        for a in report["apps"]
    ]
    print(format_table(headers, rows))
    print(f"\nL1 RPC: {report['l1_rpc']}")
    bridge = next((a["bridge"] for a in report["apps"] if a["bridge"]), None)
    if bridge is not None:
        print(f"Portal: {bridge['portal']} (inbox {bridge['inbox']})")
    if report["admin"] is not None:
        print(f"Admin:  {report['admin']['url']} (token: {report['admin']['token_file']})")
    for a in report["apps"]:
        if a["verifier"] is not None:
            print(f"Verifier of {a['name']}: {a['verifier'].get('message')}")
    print("\nFor a wallet (wallet_addEthereumChain's parameters):")
    for a in report["apps"]:
        print(f"  {a['name']}: {json.dumps(a['wallet'])}")
    return 0


def status_report(state: DevnetState) -> dict[str, Any]:
    """The shape of `rollup status --json`: each app with its current, safe (posted) and
    finalized heads, its verifier's status and its bridge (the Portal and inbox, the chain's
    delay and windows: services/bridge_cli.py), the L1, and the devnet's DA settings."""
    apps = [
        {
            "name": a["name"],
            "chain_id": a["chain_id"],
            "vm": a["vm"],
            "rpc_url": a["rpc_url"],
            "address": a["address"],
            "head": _head(a["rpc_url"]),
            **app_da_status(a),
            "bridge": status_bridge(state, a),
            "wallet": add_chain_params(a["name"], a["chain_id"], a["rpc_url"]),
        }
        for a in state["apps"]
    ]
    return {
        "apps": apps,
        "l1_rpc": state["l1"]["rpc_url"],
        "da": state.get("da"),
        "bus": state.get("bus"),
        "admin": _admin_status(state),
    }


def add_chain_params(name: str, chain_id: int, rpc_url: str) -> dict[str, Any]:
    """What a dapp passes to MetaMask's `wallet_addEthereumChain` (EIP-3085) for this app."""
    return {
        "chainId": hex(chain_id),
        "chainName": name,
        "rpcUrls": [rpc_url],
        "nativeCurrency": {"name": "Ether", "symbol": "ETH", "decimals": 18},
    }


def _admin_status(state: DevnetState) -> dict[str, str] | None:
    """Where the devnet's admin API answers and the file holding its admin token."""
    admin = state.get("admin")
    return {"url": admin["url"], "token_file": admin["token_file"]} if admin else None


def _head(rpc_url: str) -> int | None:
    try:
        result = rpc_call(rpc_url, "eth_blockNumber", timeout=2.0)
    except (RpcUnavailable, RpcCallError):
        return None
    return int(result, 16) if isinstance(result, str) else None


def _head_text(head: int | None) -> str:
    return "unreachable" if head is None else str(head)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)) for row in [headers, *rows]]
    return "\n".join(line.rstrip() for line in lines)


# ---- rollup admin ---------------------------------------------------------------------------


def cmd_admin(args: argparse.Namespace) -> int:
    """The REST admin API of the devnet in --data-dir, in the foreground."""
    data_dir = writable_dir(args.data_dir.resolve())
    _configure_logging(args.verbose)
    tokens = ensure_tokens(data_dir)
    print(f"Admin API: {url_of(args.host, args.port)} (docs: {url_of(args.host, args.port)}/docs)")
    print(f"Token:     {tokens.admin_file} (read-only: {tokens.read_file})", flush=True)
    serve_admin(data_dir, args.host, args.port)
    return 0


# ---- rollup abi / bench ---------------------------------------------------------------------


def cmd_abi(args: argparse.Namespace) -> int:
    app_dir: Path = args.app_dir
    try:
        bundle = load_app(app_dir)
        if isinstance(bundle.code, Artifact):
            print(json.dumps(bundle.code.abi, indent=2))
            return 0
        path = str(app_dir / bundle.manifest.code)
        app_class = load_app_class(bundle.code, path, bundle.manifest.class_name)
    except OSError as exc:
        raise Failure(f"cannot read the app in {app_dir}: {exc}") from None
    module = sys.modules[app_class.__module__]  # load_app_class registers the app's module
    print(json.dumps(app_abi(app_class, module), indent=2))
    return 0


def cmd_l1_deploy(args: argparse.Namespace) -> int:
    """Deploy a BatchInbox and a Portal owned by the key file's key; print their addresses."""
    l1 = L1Client(args.l1_rpc, "0x" + load_key(args.key_file).hex())
    try:
        deployment = deploy_bridge(l1)
    except (SolcError, FileNotFoundError) as exc:
        raise Failure(f"cannot compile the bridge contracts: {exc}") from None
    except L1Error as exc:
        reason = " ".join(str(exc).split())  # one line, whatever web3 said
        raise Failure(f"cannot deploy the bridge on the L1 at {args.l1_rpc}: {reason}") from None
    record = deployment.as_json()
    if args.json:
        print(json.dumps(record))
    else:
        print("\n".join(f"{name:<12} {value}" for name, value in record.items()))
    return 0


def cmd_bench(argv: Sequence[str]) -> int:
    """A thin pass-through to `benchmarks.cli:main`, which owns the benchmark options."""
    try:
        bench = importlib.import_module("benchmarks.cli")
    except ModuleNotFoundError as exc:
        if exc.name not in ("benchmarks", "benchmarks.cli"):
            raise
        raise Failure("benchmarks are not available (no benchmarks.cli module)") from None
    result = bench.main(list(argv))
    return int(result or 0)


# ---- wiring ---------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="rollup", description="App rollups: create and run.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    new = sub.add_parser("new", help="create an app from a template")
    new.add_argument("name", metavar="NAME")
    new.add_argument("--template", required=True, choices=TEMPLATES)
    new.add_argument("--dir", type=Path, help="parent directory (default: the current one)")
    new.add_argument("--chain-id", type=int, help="default: derived from NAME")
    new.set_defaults(handler=cmd_new)

    up = sub.add_parser("up", help="start a devnet: L1 and one sequencer per app")
    up.add_argument(
        "app_dirs",
        nargs="*",
        type=Path,
        metavar="APP_DIR",
        help=f"default: {DEFAULT_APP_DIR} if it exists",
    )
    up.add_argument("--detach", action="store_true", help="run in the background and return")
    _data_dir_option(up)
    up.add_argument("--l1-rpc", metavar="URL", help="use this L1 instead of starting Anvil")
    up.add_argument("--port-base", type=int, metavar="N", help="apps listen on N, N+1, ...")
    add_da_options(up)
    add_bus_option(up)
    add_admin_port_option(up)
    up.set_defaults(handler=cmd_up)

    down = sub.add_parser("down", help="stop a devnet")
    _data_dir_option(down)
    down.set_defaults(handler=cmd_down)

    add_verify_parser(sub, _data_dir_option)
    add_bridge_parser(sub, _data_dir_option)

    status = sub.add_parser("status", help="show the running devnet")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    _data_dir_option(status)
    status.set_defaults(handler=cmd_status)

    admin = sub.add_parser("admin", help="serve the REST admin API of a devnet on its own")
    _data_dir_option(admin)
    add_admin_options(admin)
    admin.set_defaults(handler=cmd_admin)

    abi = sub.add_parser("abi", help="print a native app's JSON ABI")
    abi.add_argument("app_dir", type=Path, metavar="APP_DIR")
    abi.set_defaults(handler=cmd_abi)

    l1 = sub.add_parser("l1", help="the L1 side: deploy the bridge contracts")
    l1_commands = l1.add_subparsers(dest="l1_command", required=True, metavar="COMMAND")
    deploy = l1_commands.add_parser("deploy", help="deploy a BatchInbox and a Portal on an L1")
    deploy.add_argument("--l1-rpc", required=True, metavar="URL", help="the L1's JSON-RPC URL")
    deploy.add_argument(
        "--key-file",
        required=True,
        type=Path,
        metavar="FILE",
        help="the owner's key file: it deploys and owns both",
    )
    deploy.add_argument("--json", action="store_true", help="print one JSON object")
    deploy.set_defaults(handler=cmd_l1_deploy)

    sub.add_parser("bench", help="run the benchmarks (see `rollup bench --help`)", add_help=False)
    return parser


def _data_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        metavar="DIR",
        help=f"devnet state, data and logs (default: {DEFAULT_DATA_DIR})",
    )


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:
        return _run(lambda: cmd_bench(argv[1:]))
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    return _run(lambda: handler(args))


def _run(command: Callable[[], int]) -> int:
    """Run a command, turning the errors a user can act on into a message and an exit code."""
    try:
        return command()
    except UsageError as exc:
        print(f"rollup: error: {exc}", file=sys.stderr)
        return 2
    except (Failure, DevnetError, AnvilError, RollupError) as exc:
        print(f"rollup: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
