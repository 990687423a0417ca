"""The devnet behind `rollup up`: an L1, the DA contracts and the message bus, then one
sequencer process per app (and a verifier per app with `verify`), watched and restarted.

    state.py       DATA/devnet.json: who runs where; stop a recorded devnet by PID
    specs.py       the apps to run, from their rollup.toml
    l1.py          the L1 (our Anvil, or an external one) and the DA contracts on it
    supervisor.py  `Devnet`: start in order, watch and restart, stop; `serve` in the foreground
    control.py     DATA/control/NAME.json: the operator's stop, start and restart of a node
    detach.py      `rollup up --detach`: the supervisor in a session of its own
    options.py     the flags `rollup up` and the detached supervisor share
    __main__.py    `python -m services.devnet run ...`, the detached supervisor

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
      logs/admin.log            the admin API's (services/admin/)
      admin/admin.token         the admin API's tokens (random, mode 0600): admin.token for
      admin/read.token          everything (the nodes' admin_ methods too), read.token to read
      control/NAME.json         the operator's stop, start and restart of a node (control.py)

Everything binds 127.0.0.1. A node that crashes is started again on the same port and resumes
from its database. Every process is a `ManagedProcess` (services/process.py): SIGTERM, then
SIGKILL after a timeout.

DA (`da`: "local" by default, "ethereum", or "none"): before the nodes start, the L1 gets the
BatchInbox and one funded batcher per app, and each node runs its DA poster with that backend,
told where its batcher's key file is (ROLLUP_BATCHER_KEY_FILE; the key itself is never in an
environment, a command line, a log or devnet.json). On the devnet's Anvil, dev account 0 only
funds the inbox owner; an external L1 (`l1_rpc`) needs `l1_key_file`, the owner's key file.
With `verify`, one verifier process per app (services/verifier.py) re-derives the app from
the L1 and the DA backend and serves its status on its own port.

The cross-app message bus (`bus`, services/bus/devnet.py): "embedded" by default (Unix sockets
in DATA/bus/, served by the nodes themselves), "nats" (a `nats-server -js` this supervisor runs
and restarts, JetStream in DATA/nats/, log in logs/nats-server.log) or an external
"nats://HOST:PORT". Every node gets the bus URL with `--bus`.
"""

from __future__ import annotations

from services.devnet.detach import spawn_detached, wait_detached
from services.devnet.errors import DevnetError
from services.devnet.options import (
    DA_BACKENDS,
    add_admin_port_option,
    add_da_options,
    admin_arguments,
    check_l1_key_file,
    da_arguments,
)
from services.devnet.specs import AppSpec, load_app_specs
from services.devnet.state import (
    AdminRecord,
    AppRecord,
    DARecord,
    DevnetState,
    L1Record,
    VerifierRecord,
    is_running,
    read_state,
    state_path,
    stop_recorded,
)
from services.devnet.supervisor import NODE_START_TIMEOUT, Devnet, serve

__all__ = [
    "DA_BACKENDS",
    "AdminRecord",
    "NODE_START_TIMEOUT",
    "AppRecord",
    "AppSpec",
    "DARecord",
    "Devnet",
    "DevnetError",
    "DevnetState",
    "L1Record",
    "VerifierRecord",
    "add_admin_port_option",
    "add_da_options",
    "admin_arguments",
    "check_l1_key_file",
    "da_arguments",
    "is_running",
    "load_app_specs",
    "read_state",
    "serve",
    "spawn_detached",
    "state_path",
    "stop_recorded",
    "wait_detached",
]
