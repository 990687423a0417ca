"""Who may do what on the bus's NATS server: subjects, per-chain permissions, credentials.

    rollup.bus.msg.<dst>.<src>     MESSAGES frames (JetStream stream ROLLUP_BUS, rollup.bus.msg.>)
    rollup.bus.ctl.<dst>.<src>     HELLO and PROGRESS (core NATS)
    rollup.bus.deliver.<chain>     where the durable consumer rollup-bus-<chain> (filter
                                   rollup.bus.msg.<chain>.*) pushes the chain's messages
    _INBOX_<chain>.>               the chain's reply subjects (JetStream acks, API answers)

Every subject names its source, so a permission can say who sends. A chain's user may
publish only frames that name it as the source, subscribe only to what is addressed to it,
and use only its own consumer (`chain_permissions`); the admin user, which the supervisor
keeps, creates the stream and every chain's consumer (services/bus/nats.py `provision`).
No user, no connection: the server the devnet runs has no anonymous access.

    credentials file = JSON {"user": "...", "password": "..."}, mode 0600

A node reads its file (`--bus-credentials FILE`), so the password never appears in a process
listing or a log line (a nats://user:password@host URL works too, but shows in `ps`).
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

from services.bus.transport import BusConfigError

__all__ = [
    "STREAM",
    "ADMIN_USER",
    "NatsCredentials",
    "Permissions",
    "msg_subject",
    "ctl_subject",
    "ctl_filter",
    "deliver_subject",
    "consumer_name",
    "consumer_filter",
    "inbox_prefix",
    "chain_user",
    "chain_permissions",
    "load_credentials",
    "load_or_create_credentials",
]

STREAM = "ROLLUP_BUS"
STREAM_SUBJECTS = "rollup.bus.msg.>"
ADMIN_USER = "rollup-admin"


def msg_subject(dst_chain: int, src_chain: int) -> str:
    return f"rollup.bus.msg.{dst_chain}.{src_chain}"


def ctl_subject(dst_chain: int, src_chain: int) -> str:
    return f"rollup.bus.ctl.{dst_chain}.{src_chain}"


def ctl_filter(chain_id: int) -> str:
    """Every control subject addressed to `chain_id`."""
    return f"rollup.bus.ctl.{chain_id}.*"


def deliver_subject(chain_id: int) -> str:
    return f"rollup.bus.deliver.{chain_id}"


def consumer_name(chain_id: int) -> str:
    return f"rollup-bus-{chain_id}"


def consumer_filter(chain_id: int) -> str:
    return f"rollup.bus.msg.{chain_id}.*"


def inbox_prefix(chain_id: int) -> str:
    return f"_INBOX_{chain_id}"


def chain_user(chain_id: int) -> str:
    return f"chain-{chain_id}"


class Permissions(TypedDict):
    publish: list[str]
    subscribe: list[str]


def chain_permissions(chain_id: int) -> Permissions:
    """What chain `chain_id`'s user may do: send as itself, receive what is for it."""
    consumer = consumer_name(chain_id)
    return {
        "publish": [
            f"rollup.bus.msg.*.{chain_id}",
            f"rollup.bus.ctl.*.{chain_id}",
            f"$JS.API.STREAM.INFO.{STREAM}",
            f"$JS.API.CONSUMER.INFO.{STREAM}.{consumer}",
            f"$JS.ACK.{STREAM}.{consumer}.>",
        ],
        "subscribe": [
            ctl_filter(chain_id),
            deliver_subject(chain_id),
            f"{inbox_prefix(chain_id)}.>",
        ],
    }


@dataclass(frozen=True, slots=True)
class NatsCredentials:
    user: str
    password: str

    def __repr__(self) -> str:  # never the password, should one end up in a log
        return f"NatsCredentials(user={self.user!r})"


def load_credentials(path: Path) -> NatsCredentials:
    """A credentials file; BusConfigError if it is missing, malformed or readable by others."""
    try:
        mode = path.stat().st_mode
        raw = json.loads(path.read_text())
    except OSError as exc:
        raise BusConfigError(f"cannot read the bus credentials {path}: {exc}") from None
    except ValueError:
        raise BusConfigError(f"bus credentials {path} are not JSON") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise BusConfigError(
            f"bus credentials {path} are accessible by other users (mode "
            f"{stat.S_IMODE(mode):04o}); run `chmod 600 {path}`"
        )
    if not (
        isinstance(raw, dict)
        and isinstance(raw.get("user"), str)
        and isinstance(raw.get("password"), str)
        and raw["user"]
    ):
        raise BusConfigError(f'bus credentials {path}: expected {{"user": ..., "password": ...}}')
    return NatsCredentials(raw["user"], raw["password"])


def load_or_create_credentials(path: Path, user: str) -> NatsCredentials:
    """The credentials in `path`, or new ones with a random password (mode 0600)."""
    if path.exists():
        return load_credentials(path)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    credentials = NatsCredentials(user, secrets.token_urlsafe(32))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"user": credentials.user, "password": credentials.password}, out)
        out.write("\n")
    return credentials
