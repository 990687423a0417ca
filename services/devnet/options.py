"""The flags `rollup up` and the detached supervisor (`python -m services.devnet run`) share:
the DA backend and mode, the verifiers, the L1 owner's key file for an external L1, and the
admin API's port."""

from __future__ import annotations

import argparse
from pathlib import Path

from services.devnet.errors import DevnetError
from services.keys import load_key

__all__ = [
    "DA_BACKENDS",
    "add_admin_port_option",
    "add_da_options",
    "admin_arguments",
    "check_l1_key_file",
    "da_arguments",
]

DA_BACKENDS = ("none", "local", "ethereum")


def add_da_options(parser: argparse.ArgumentParser) -> None:
    """--da, --da-mode, --verify and --l1-key-file."""
    parser.add_argument(
        "--da",
        choices=DA_BACKENDS,
        default="local",
        help="DA backend of every app's poster (default: local)",
    )
    parser.add_argument(
        "--da-mode",
        choices=("calldata", "blobs"),
        default="calldata",
        help="the ethereum backend's mode (default: calldata)",
    )
    parser.add_argument(
        "--verify", action="store_true", help="run a verifier per app (status on its own port)"
    )
    parser.add_argument(
        "--l1-key-file",
        type=Path,
        metavar="FILE",
        help="with --l1-rpc: the key file (mode 0600) of the account that "
        "deploys and owns the DA inbox and funds the batchers",
    )


def check_l1_key_file(l1_rpc: str | None, da: str, l1_key_file: Path | None) -> None:
    """An external L1 with DA needs the owner's key file, readable by its user only
    (DevnetError, KeyFileError: one line each); our own Anvil makes its own."""
    if l1_rpc is not None and da != "none" and l1_key_file is None:
        raise DevnetError(
            "--l1-rpc needs --l1-key-file FILE: the key (a file of mode 0600) "
            "that deploys and owns the DA inbox and funds the batchers on that "
            "L1; dev account 0 is not used there"
        )
    if l1_key_file is not None:
        load_key(l1_key_file)


def da_arguments(da: str, da_mode: str, verify: bool, l1_key_file: Path | None = None) -> list[str]:
    """The flags of `add_da_options` that give these values, for the detached supervisor."""
    key_file = ["--l1-key-file", str(l1_key_file.resolve())] if l1_key_file else []
    return ["--da", da, "--da-mode", da_mode] + (["--verify"] if verify else []) + key_file


def add_admin_port_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--admin-port",
        type=int,
        metavar="N",
        help="the REST admin API's port on 127.0.0.1 (default: a free one)",
    )


def admin_arguments(admin_port: int | None) -> list[str]:
    """The flag of `add_admin_port_option` that gives this value, for the detached supervisor."""
    return [] if admin_port is None else ["--admin-port", str(admin_port)]
