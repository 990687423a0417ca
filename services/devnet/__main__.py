"""`python -m services.devnet run [--data-dir D] [--l1-rpc URL] [--port-base N] [--da ...]
[--bus ...] [--admin-port N] APP_DIR...`: the detached supervisor. Users run
`rollup up --detach`, which starts this (services/devnet/detach.py)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from rollup.errors import ProcessError
from services.bus.devnet import add_bus_option
from services.cliargs import OneLineParser
from services.devnet.options import add_admin_port_option, add_da_options
from services.devnet.specs import load_app_specs
from services.devnet.supervisor import Devnet, serve
from services.logs import configure_logging

log = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m services.devnet")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="supervise a devnet until SIGTERM")
    run.add_argument("app_dirs", nargs="+", type=Path, metavar="APP_DIR")
    run.add_argument("--data-dir", type=Path, default=Path(".rollup"))
    run.add_argument("--l1-rpc")
    run.add_argument("--port-base", type=int)
    add_da_options(run)
    add_bus_option(run)
    add_admin_port_option(run)
    args = parser.parse_args(argv)
    configure_logging("info")  # text, or JSON with ROLLUP_LOG_FORMAT=json (services/logs.py)
    try:
        devnet = Devnet(
            load_app_specs(args.app_dirs),
            args.data_dir,
            args.l1_rpc,
            args.port_base,
            da=args.da,
            da_mode=args.da_mode,
            verify=args.verify,
            bus=args.bus,
            l1_key_file=args.l1_key_file,
            admin_port=args.admin_port,
        )
        serve(devnet)
    except ProcessError as exc:
        log.error("%s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
