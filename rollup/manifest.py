"""The app manifest, `rollup.toml`: what an app is and how its chain starts.

    [app]
    name = "token"                # [a-z0-9-], 1..32 chars
    chain_id = 901001             # 1 .. 2**53-1 (MetaMask's limit)
    vm = "native"                 # "native" | "evm"
    code = "app.py"               # native: the module holding the App class;
                                  # evm: the Solidity source (compiled to build/CLASS.json)
    class = "Token"               # native: optional when the module has one App subclass;
                                  # evm: the contract to deploy (required)

    [app.init]                    # native: keyword arguments of init() at genesis;
    supply = 1000000              # evm: the constructor's arguments, by name

    [genesis]
    dev_accounts = true           # fund Anvil's ten dev accounts (public keys: devnets only)
    dev_balance = "10000 ether"   # integer wei or "<n> ether|gwei|wei"
    owner = "0xf39F...2266"       # who may upgrade the app: msg.sender of a native app's init,
                                  # the deployer of an EVM app (CREATE(owner, 0)); an address,
                                  # EIP-55 or lower-case hex. Required when dev_accounts = false
                                  # (and then not a dev account); with dev_accounts = true it
                                  # may be 0..9, a dev account's index, and defaults to 0.

    [sequencer]
    block_interval_ms = 10        # minimum time between two blocks
    base_fee = "1 gwei"
    gas_limit = 1000000000
    database = ""                 # SQLAlchemy URL; empty = SQLite file in the data dir

    [bridge]                      # the L1 bridge (bridge/README.md); production defaults:
    confirmations = 12            # L1 blocks a deposit must be under before it is credited
    sequencing_window = 50        # L1 blocks by which a deposit must be in a posted batch
                                  # (10 minutes of Ethereum); more than confirmations
    withdrawal_delay = 604800     # seconds from an output root's commitment to finalizing
                                  # withdrawals proven against it: time to revert a bad batch
    escape_window = 1209600       # seconds without a new output root before anyone may exit
                                  # with their balance (14 days); more than withdrawal_delay

    [node] [rpc] [bus] [da] [l1] [log] [verifier]
                                  # how the node and verifier processes run (ports, the DA
                                  # poster, the L1, logs): services/settings.py reads these
                                  # tables and names their keys; flags and the environment
                                  # override them

Every key and table is checked: an unknown one is refused, naming the closest known one
(`app.chainid: unknown key; did you mean chain_id?`), and so is a value of the wrong type; each
mistake is one line naming the key. Parsing takes the TOML text; reading the file is the
caller's job.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from rollup.crypto import keccak
from rollup.errors import ManifestError
from rollup.genesis import DEFAULT_DEV_BALANCE, DEV_ADDRESSES
from rollup.transactions import contract_address
from rollup.types import MAX_CHAIN_ID, Address

__all__ = [
    "APP_NAME",
    "MAX_CHAIN_ID",
    "BridgeSettings",
    "Manifest",
    "VMKind",
    "SETTINGS_TABLES",
    "unknown_key",
    "parse_manifest",
    "parse_amount",
    "parse_address",
    "app_address",
    "default_chain_id",
    "fee_vault",
]

APP_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")  # 1-32 of [a-z0-9-], no leading -
_HEX_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_UNITS = {"wei": 1, "gwei": 10**9, "ether": 10**18, "eth": 10**18}

VMKind = Literal["native", "evm"]
_VMS: tuple[VMKind, ...] = ("native", "evm")

# The keys of each table this module reads ([app.init] holds whatever init() takes).
_KEYS: dict[str, tuple[str, ...]] = {
    "app": ("name", "chain_id", "vm", "code", "class", "init"),
    "genesis": ("dev_accounts", "dev_balance", "owner"),
    "sequencer": ("block_interval_ms", "base_fee", "gas_limit", "database"),
    "bridge": ("confirmations", "sequencing_window", "withdrawal_delay", "escape_window"),
}
# The processes' settings (services/settings.py checks their keys): kept as written.
SETTINGS_TABLES = ("node", "rpc", "bus", "da", "l1", "log", "verifier")


@dataclass(frozen=True, slots=True)
class BridgeSettings:
    """`[bridge]`: the L1 bridge's windows for this app (production defaults)."""

    confirmations: int = 12
    sequencing_window: int = 50
    withdrawal_delay: int = 604_800
    escape_window: int = 1_209_600


@dataclass(frozen=True, slots=True)
class Manifest:
    name: str
    chain_id: int
    vm: VMKind
    code: str
    class_name: str | None = None
    init_args: dict[str, Any] = field(default_factory=dict)
    dev_accounts: bool = True
    dev_balance: int = DEFAULT_DEV_BALANCE
    owner: Address = DEV_ADDRESSES[0]  # who may upgrade the app (see the docstring)
    block_interval_ms: int = 10
    base_fee: int = 10**9
    gas_limit: int = 1_000_000_000
    database: str = ""
    bridge: BridgeSettings = field(default_factory=lambda: BridgeSettings())
    # [node], [rpc], ... as written (SETTINGS_TABLES): services/settings.py validates them
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def address(self) -> Address:
        """Where the app's contract lives. An EVM app is deployed at genesis by the owner's
        first transaction, so it sits where Ethereum would put it: CREATE(owner, 0)."""
        if self.vm == "evm":
            return contract_address(self.owner, 0)
        return app_address(self.name)

    @property
    def artifact(self) -> str:
        """An EVM app's compiled contract, relative to the app directory."""
        return f"build/{self.class_name}.json"


def app_address(name: str) -> Address:
    """Where a native app lives: derived from its name, so a manifest needs no address."""
    return Address(keccak(b"app-rollup:native-app:" + name.encode())[12:])


def fee_vault(name: str) -> Address:
    """Where an app's transaction fees go (the block's coinbase)."""
    return Address(keccak(b"app-rollup:fee-vault:" + name.encode())[12:])


def default_chain_id(name: str) -> int:
    """A stable chain id for a new app, in 900000..999999 (free of well-known chains)."""
    return 900_000 + int.from_bytes(keccak(name.encode())[:4], "big") % 100_000


def parse_amount(value: object, where: str) -> int:
    if isinstance(value, bool):
        raise ManifestError(f"{where}: expected an amount, got a boolean")
    if isinstance(value, int):
        if value < 0:
            raise ManifestError(f"{where}: must not be negative")
        return value
    if isinstance(value, str):
        parts = value.split()
        if len(parts) == 2 and parts[1].lower() in _UNITS:
            try:
                number = Decimal(parts[0])  # not float: "0.1 ether" must be exactly 10**17 wei
            except InvalidOperation:
                raise ManifestError(f"{where}: cannot read {value!r} as an amount") from None
            amount = number * _UNITS[parts[1].lower()]
            if amount >= 0 and amount == amount.to_integral_value():
                return int(amount)
        raise ManifestError(f"{where}: expected wei or '<n> ether|gwei|wei', got {value!r}")
    raise ManifestError(f"{where}: expected an amount, got {type(value).__name__}")


def unknown_key(where: str, key: str, known: Iterable[str]) -> str:
    """The one-line message for an unknown `key` of table `where` ('' at the top level),
    naming the closest known key when one is close."""
    known = list(known)
    name = f"{where}.{key}" if where else key
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if close:
        return f"{name}: unknown key; did you mean {close[0]}?"
    return f"{name}: unknown key (known: {', '.join(known)})"


def _unknown_table(name: str) -> str:
    known = [*_KEYS, *SETTINGS_TABLES]
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if close:
        return f"[{name}]: unknown table; did you mean [{close[0]}]?"
    return f"[{name}]: unknown table (known: {', '.join(f'[{t}]' for t in known)})"


def _outside_tables(key: str) -> str:
    """A key written above every table (TOML puts it at the top level)."""
    owners = {k: table for table, keys in _KEYS.items() for k in keys}
    close = difflib.get_close_matches(key, list(owners), n=1, cutoff=0.6)
    hint = f"; did you mean {owners[close[0]]}.{close[0]}?" if close else ""
    return f"{key}: a key outside every table{hint}"


def _check_top_level(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The settings tables, after refusing any key or table this file may not hold."""
    settings: dict[str, dict[str, Any]] = {}
    for name, value in data.items():
        if name in _KEYS:
            continue
        if name in SETTINGS_TABLES:
            if not isinstance(value, dict):
                raise ManifestError(f"[{name}] must be a table")
            settings[name] = value
        elif isinstance(value, dict):
            raise ManifestError(_unknown_table(name))
        else:
            raise ManifestError(_outside_tables(name))
    return settings


def _table(data: dict[str, Any], key: str, where: str = "") -> dict[str, Any]:
    """Table `key` of `data` (empty if absent), its keys checked when this module reads it."""
    name = f"{where}.{key}" if where else key
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ManifestError(f"[{name}] must be a table")
    for item in value:
        if name in _KEYS and item not in _KEYS[name]:
            raise ManifestError(unknown_key(name, item, _KEYS[name]))
    return value


def _int_field(table: dict[str, Any], key: str, where: str, default: int, lo: int, hi: int) -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ManifestError(f"{where}.{key}: expected an integer in {lo}..{hi}, got {value!r}")
    return value


def _checksummed(raw: bytes) -> str:
    """EIP-55: a hex digit is upper case where the keccak of the lower-case hex has a nibble
    of 8 or more."""
    digits = raw.hex()
    nibbles = keccak(digits.encode()).hex()
    return "0x" + "".join(c.upper() if int(n, 16) >= 8 else c for c, n in zip(digits, nibbles))


def parse_address(value: object, where: str) -> Address:
    """A 0x-prefixed address, all lower case or correctly EIP-55 checksummed."""
    if not isinstance(value, str) or not _HEX_ADDRESS.match(value):
        raise ManifestError(f"{where}: expected a 0x-prefixed 20-byte hex address, got {value!r}")
    raw = Address(bytes.fromhex(value[2:]))
    if value[2:] != value[2:].lower() and value != _checksummed(raw):
        raise ManifestError(
            f"{where}: {value} has a wrong EIP-55 checksum (a typo?); "
            f"write it as {_checksummed(raw)} or in lower case"
        )
    return raw


def _owner(genesis: dict[str, Any], dev_accounts: bool) -> Address:
    """Who may upgrade the app: an address, or (dev accounts only) a dev account's index."""
    value: object = genesis.get("owner", 0 if dev_accounts else None)
    is_index = isinstance(value, int) and not isinstance(value, bool)
    if dev_accounts and isinstance(value, int) and is_index:
        if not 0 <= value < len(DEV_ADDRESSES):
            raise ManifestError(
                f"genesis.owner: expected an address or a dev account index "
                f"0..{len(DEV_ADDRESSES) - 1}, got {value!r}"
            )
        return DEV_ADDRESSES[value]
    if value is None:
        raise ManifestError(
            "genesis.owner: required when dev_accounts = false "
            "(the address that may upgrade the app)"
        )
    if is_index:
        raise ManifestError(
            f"genesis.owner: dev account index {value} needs dev_accounts = "
            "true; name the owner's address"
        )
    owner = parse_address(value, "genesis.owner")
    if not dev_accounts and owner in DEV_ADDRESSES:
        raise ManifestError(
            f"genesis.owner: {value} is Anvil dev account "
            f"{DEV_ADDRESSES.index(owner)}, whose key is public; with "
            "dev_accounts = false name an address whose key you keep"
        )
    return owner


def parse_manifest(text: str) -> Manifest:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(f"rollup.toml is not valid TOML: {exc}") from None
    settings = _check_top_level(data)
    app = _table(data, "app")
    name = app.get("name")
    if not isinstance(name, str) or not APP_NAME.match(name):
        raise ManifestError(f"app.name: expected 1-32 chars of [a-z0-9-], got {name!r}")
    vm = _vm(app.get("vm", "native"))
    code = app.get("code", "app.py" if vm == "native" else "")
    if not isinstance(code, str):
        raise ManifestError(f"app.code: expected a file name, got {code!r}")
    class_name = app.get("class")
    if class_name is not None and not isinstance(class_name, str):
        raise ManifestError(f"app.class: expected a class name, got {class_name!r}")
    if vm == "evm" and not (class_name and code.endswith(".sol")):
        raise ManifestError("an evm app needs app.code = '<file>.sol' and app.class = '<Contract>'")
    if class_name is not None and not class_name.isidentifier():
        raise ManifestError(f"app.class: {class_name!r} is not an identifier")
    genesis = _table(data, "genesis")
    dev_accounts = genesis.get("dev_accounts", True)
    if not isinstance(dev_accounts, bool):
        raise ManifestError(f"genesis.dev_accounts: expected true or false, got {dev_accounts!r}")
    seq = _table(data, "sequencer")
    database = seq.get("database", "")
    if not isinstance(database, str):
        raise ManifestError(f"sequencer.database: expected a SQLAlchemy URL, got {database!r}")
    return Manifest(
        name=name,
        chain_id=_int_field(app, "chain_id", "app", default_chain_id(name), 1, MAX_CHAIN_ID),
        vm=vm,
        code=code,
        class_name=class_name,
        init_args=_table(app, "init", "app"),
        dev_accounts=dev_accounts,
        dev_balance=parse_amount(
            genesis.get("dev_balance", DEFAULT_DEV_BALANCE), "genesis.dev_balance"
        ),
        owner=_owner(genesis, dev_accounts),
        block_interval_ms=_int_field(seq, "block_interval_ms", "sequencer", 10, 0, 60_000),
        base_fee=parse_amount(seq.get("base_fee", 10**9), "sequencer.base_fee"),
        gas_limit=_int_field(seq, "gas_limit", "sequencer", 1_000_000_000, 100_000, 2**62),
        database=database,
        bridge=_bridge(_table(data, "bridge")),
        settings=settings,
    )


def _vm(value: object) -> VMKind:
    for kind in _VMS:
        if value == kind:
            return kind
    raise ManifestError(f"app.vm: expected 'native' or 'evm', got {value!r}")


def _bridge(table: dict[str, Any]) -> BridgeSettings:
    d = BridgeSettings()
    settings = BridgeSettings(
        confirmations=_int_field(table, "confirmations", "bridge", d.confirmations, 0, 1_000),
        sequencing_window=_int_field(
            table, "sequencing_window", "bridge", d.sequencing_window, 1, 100_000
        ),
        withdrawal_delay=_int_field(
            table, "withdrawal_delay", "bridge", d.withdrawal_delay, 0, 365 * 86_400
        ),
        escape_window=_int_field(
            table, "escape_window", "bridge", d.escape_window, 1, 10 * 365 * 86_400
        ),
    )
    if settings.sequencing_window <= settings.confirmations:
        raise ManifestError(
            "bridge.sequencing_window must be more than bridge.confirmations "
            "(a deposit must be credited before it is due)"
        )
    if settings.escape_window <= settings.withdrawal_delay:
        raise ManifestError("bridge.escape_window must be more than bridge.withdrawal_delay")
    return settings
