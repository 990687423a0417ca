"""The one typed settings model of the node and verifier processes, and where each comes from.

Every setting is declared once below, with its type, default, flag, environment variable and
rollup.toml key; the processes' flags are made from the declarations (`add_arguments`). Each
value is taken from the first source that has it:

    flags  >  environment  >  rollup.toml (the app's, in --app-dir)  >  defaults

An empty environment variable counts as unset. A value a source gives of the wrong type, an
unknown rollup.toml key, a mode that is not one of its `Literal`s: a `ConfigError` of one
line naming the flag, the variable or the key, before anything starts.

    setting                flag                     environment               rollup.toml
    app_dir                --app-dir                -                         -
    admin_token_file       --admin-token-file       ROLLUP_ADMIN_TOKEN_FILE   -
    node.host              --host                   ROLLUP_NODE_HOST          [node] host
    node.port              --port                   ROLLUP_NODE_PORT          [node] port
    node.data_dir          --data-dir               ROLLUP_DATA_DIR           [node] data_dir
    node.db_url            --db-url                 ROLLUP_DB_URL             [sequencer] database
    rpc.cors_origins       --cors-origins           ROLLUP_RPC_CORS_ORIGINS   [rpc] cors_origins
    rpc.trusted_origins    --trusted-origins        ROLLUP_RPC_TRUSTED_ORIGINS [rpc] trusted_origins
    rpc.hosts              --rpc-hosts              ROLLUP_RPC_HOSTS          [rpc] hosts
    rpc.gas_cap            --rpc-gas-cap            ROLLUP_RPC_GAS_CAP        [rpc] gas_cap
    bus.url                --bus                    ROLLUP_BUS_URL            [bus] url
    bus.sequencers         --sequencers             ROLLUP_BUS_SEQUENCERS     [bus] sequencers
    bus.credentials        --bus-credentials        ROLLUP_BUS_CREDENTIALS    [bus] credentials
    l1.rpc                 --l1-rpc                 ROLLUP_L1_RPC             [l1] rpc
    l1.portal              --portal                 ROLLUP_PORTAL             [l1] portal
    l1.portal_from_block   --portal-from-block      ROLLUP_PORTAL_BLOCK       [l1] portal_from_block
    l1.poll                --l1-poll                ROLLUP_L1_POLL            [l1] poll
    da.backend             --da                     ROLLUP_DA                 [da] backend
    da.mode                --da-mode                ROLLUP_DA_MODE            [da] mode
    da.inbox               --inbox                  ROLLUP_INBOX              [da] inbox
    da.inbox_from_block    --inbox-from-block       ROLLUP_INBOX_BLOCK        [da] inbox_from_block
    da.batcher_key_file    --batcher-key-file       ROLLUP_BATCHER_KEY_FILE   [da] batcher_key_file
    da.max_delay           --da-max-delay           ROLLUP_DA_MAX_DELAY       [da] max_delay
    da.max_backlog_blocks  --da-max-backlog-blocks  ROLLUP_DA_MAX_BACKLOG_BLOCKS  (and so on)
    da.max_backlog_txs     --da-max-backlog-txs     ROLLUP_DA_MAX_BACKLOG_TXS
    da.retry_max           --da-retry-max           ROLLUP_DA_RETRY_MAX
    verifier.port          --port (the verifier's)  ROLLUP_VERIFIER_PORT      [verifier] port
    verifier.from_l1_block --from-l1-block          ROLLUP_VERIFIER_FROM_L1_BLOCK
    verifier.da_dirs       --da-dir (repeated)      ROLLUP_VERIFIER_DA_DIRS (':'-separated)
    verifier.timeout       --timeout                ROLLUP_VERIFIER_TIMEOUT
    log.level              --log-level              ROLLUP_LOG_LEVEL          [log] level
    log.format             --log-format             ROLLUP_LOG_FORMAT         [log] format
The devnet supervisor passes the DA poster's and the L1 follower's settings by environment
(ROLLUP_DA, ROLLUP_DA_MODE, ROLLUP_L1_RPC, ROLLUP_INBOX, ROLLUP_INBOX_BLOCK,
ROLLUP_BATCHER_KEY_FILE, ROLLUP_PORTAL, ROLLUP_PORTAL_BLOCK): those names are kept. Paths in
rollup.toml are relative to the app directory; on a flag or in the environment, to the
working directory. Each process reads the sections it runs (the node: node, rpc, bus, l1, da,
log; the verifier: l1, da.inbox, verifier, log); `Settings(...)` builds one in tests.

`admin_token_file` is the node's admin token (services/rpc/admin.py), in a file of mode 0600
that the admin service writes (services/admin/tokens.py). It is taken from the environment
only, by `node_admin_token_file()` where the admin methods need it: whoever starts the node
(the devnet supervisor) names it, and no rollup.toml or flag of the node can.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainValidator, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from da.poster import PosterConfig
from rollup.errors import ConfigError
from rollup.manifest import parse_manifest, unknown_key
from services.l1follow import POLL_S
from services.logs import LogFormat, LogLevel
from services.rpc.server import DEFAULT_GAS_CAP, RpcAccess

__all__ = [
    "writable_dir",
    "Settings",
    "NodeSection",
    "RpcSection",
    "BusSection",
    "L1Section",
    "DASection",
    "VerifierSection",
    "LogSection",
    "DABackendName",
    "DAMode",
    "Option",
    "OPTIONS",
    "SECTIONS",
    "add_arguments",
    "load_settings",
    "require",
    "node_admin_token_file",
]

DABackendName = Literal["local", "ethereum"]
DAMode = Literal["calldata", "blobs"]
_POSTER, _ACCESS = PosterConfig(), RpcAccess()  # their defaults are the settings' defaults


def _address(value: object) -> bytes:
    """A 20-byte address: hex, 0x-prefixed or not, any case (no checksum check)."""
    if isinstance(value, bytes) and len(value) == 20:
        return value
    text = value.removeprefix("0x") if isinstance(value, str) else ""
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != 20:
        raise ValueError(f"expected a 20-byte hex address, got {value!r}")
    return raw


def _names(value: object) -> object:
    """Comma-separated names (a flag, a variable) or a list of them (rollup.toml)."""
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return tuple(value) if isinstance(value, list) else value


def _paths(value: object) -> object:
    """Paths separated by ':' (a variable) or a list of them."""
    if isinstance(value, str):
        return tuple(part for part in value.split(os.pathsep) if part)
    return tuple(value) if isinstance(value, list) else value


Address = Annotated[bytes, PlainValidator(_address)]
Names = Annotated[tuple[str, ...], BeforeValidator(_names)]
Paths = Annotated[tuple[Path, ...], BeforeValidator(_paths)]


def _setting(
    default: Any,
    help: str,
    *,
    flag: str | None = None,
    env: str | None = None,
    toml: str | None = None,
    **limits: Any,
) -> Any:
    """A field with its help and, where they differ from the rule, its names: flag
    --SECTION-FIELD, variable ROLLUP_SECTION_FIELD, rollup.toml [SECTION] FIELD."""
    names: dict[str, Any] = {
        k: v for k, v in (("flag", flag), ("env", env), ("toml", toml)) if v is not None
    }
    return Field(default, description=help, json_schema_extra=names, **limits)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NodeSection(_Section):
    host: str = _setting("127.0.0.1", "address to serve JSON-RPC on", flag="--host")
    port: int | None = _setting(None, "JSON-RPC port (required)", flag="--port", ge=0, le=65_535)
    data_dir: Path | None = _setting(
        None,
        "the chain's database, keys and DA store (required)",
        flag="--data-dir",
        env="ROLLUP_DATA_DIR",
    )
    db_url: str | None = _setting(
        None,
        "SQLAlchemy URL of the chain's database (default: SQLite in the data dir)",
        flag="--db-url",
        env="ROLLUP_DB_URL",
        toml="sequencer.database",
    )


class RpcSection(_Section):
    cors_origins: Names = _setting(
        _ACCESS.cors_origins,
        "comma-separated origins whose pages may read answers (default: *, any)",
        flag="--cors-origins",
    )
    trusted_origins: Names = _setting(
        _ACCESS.trusted_origins,
        "comma-separated origins allowed to call private methods (default: none)",
        flag="--trusted-origins",
    )
    hosts: Names = _setting(
        _ACCESS.hosts,
        "comma-separated Host headers accepted, * for any "
        "(default: loopback names; guards against DNS rebinding)",
        flag="--rpc-hosts",
    )
    gas_cap: int = _setting(
        DEFAULT_GAS_CAP, "most gas one eth_call/eth_estimateGas run may use", ge=0
    )


class BusSection(_Section):
    url: str | None = _setting(
        None,
        "message bus URL: unix:///DIR or nats://HOST:PORT (default: none, no cross-app messages)",
        flag="--bus",
    )
    sequencers: Path | None = _setting(
        None,
        'JSON {"<chain_id>": "0x<sequencer address>"}: '
        "the chains whose messages this node accepts "
        "(default: none)",
        flag="--sequencers",
    )
    credentials: Path | None = _setting(
        None, 'NATS user of this chain: JSON {"user": ..., "password": ...}, mode 0600'
    )


class L1Section(_Section):
    rpc: str | None = _setting(None, "JSON-RPC URL of the L1")
    portal: Address | None = _setting(
        None,
        "address of the L1 Portal: follow its deposits for this chain (default: no deposits)",
        flag="--portal",
        env="ROLLUP_PORTAL",
    )
    portal_from_block: int | None = _setting(
        None,
        "L1 block the Portal was deployed in: "
        "deposits are read from there (node default 0, "
        "verifier default --from-l1-block)",
        flag="--portal-from-block",
        env="ROLLUP_PORTAL_BLOCK",
        ge=0,
    )
    poll: float = _setting(POLL_S, "seconds between polls of the L1", gt=0)


class DASection(_Section):
    backend: DABackendName | None = _setting(
        None,
        "post blocks to this DA backend and commit them on the L1 inbox (default: no poster)",
        flag="--da",
        env="ROLLUP_DA",
    )
    mode: DAMode = _setting("calldata", "ethereum backend: calldata or EIP-4844 blobs")
    inbox: Address | None = _setting(
        None, "address of the L1 BatchInbox contract", flag="--inbox", env="ROLLUP_INBOX"
    )
    inbox_from_block: int = _setting(
        0,
        "L1 block the inbox was deployed in",
        flag="--inbox-from-block",
        env="ROLLUP_INBOX_BLOCK",
        ge=0,
    )
    batcher_key_file: Path | None = _setting(
        None,
        "the batcher's key file (mode 0600), the account that commits batches on the inbox",
        flag="--batcher-key-file",
        env="ROLLUP_BATCHER_KEY_FILE",
    )
    max_delay: float = _setting(_POSTER.max_delay_s, "seconds an unposted block may wait", gt=0)
    max_backlog_blocks: int = _setting(
        _POSTER.max_backlog_blocks, "refuse transactions past this many unposted blocks", ge=0
    )
    max_backlog_txs: int = _setting(
        _POSTER.max_backlog_txs, "refuse transactions past this many unposted transactions", ge=0
    )
    retry_max: float = _setting(
        _POSTER.retry_max_s, "longest back-off between failed posts, seconds", gt=0
    )


class VerifierSection(_Section):
    port: int | None = _setting(
        None, "serve /status and /metrics on this port", flag="--port", ge=0, le=65_535
    )
    from_l1_block: int = _setting(
        0, "read the inbox from this L1 block", flag="--from-l1-block", ge=0
    )
    da_dirs: Paths = _setting(
        (),
        "the app's local DA store (read-only); again for each source app's store",
        flag="--da-dir",
    )
    timeout: float = _setting(
        600.0, "--once: give up after this many seconds", flag="--timeout", gt=0
    )


class LogSection(_Section):
    level: LogLevel = _setting("info", "least severe records logged")
    format: LogFormat = _setting("text", "text, or json (one object a line, for log shippers)")


class Settings(BaseSettings):
    """Everything the node and the verifier are told; see the module's docstring."""

    model_config = SettingsConfigDict(extra="forbid", frozen=True)

    app_dir: Path | None = _setting(
        None, "the app's directory (rollup.toml, its code)", flag="--app-dir", env=""
    )
    admin_token_file: Path | None = _setting(
        None,
        "the node's admin token (mode 0600): admin_ JSON-RPC methods require it "
        "(default: none, admin methods disabled)",
    )
    node: NodeSection = NodeSection()
    rpc: RpcSection = RpcSection()
    bus: BusSection = BusSection()
    l1: L1Section = L1Section()
    da: DASection = DASection()
    verifier: VerifierSection = VerifierSection()
    log: LogSection = LogSection()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Flags (the keyword arguments), then the environment, then rollup.toml."""
        return init_settings, Environment(settings_cls), RollupToml(settings_cls)


SECTIONS: dict[str, type[_Section]] = {
    "node": NodeSection,
    "rpc": RpcSection,
    "bus": BusSection,
    "l1": L1Section,
    "da": DASection,
    "verifier": VerifierSection,
    "log": LogSection,
}


# ---- the names of each setting ----


@dataclass(frozen=True, slots=True)
class Option:
    path: str  # "da.backend"
    flag: str  # "--da"
    env: str  # "ROLLUP_DA" ("" for none)
    toml: str  # "da.backend" ("" for none)
    help: str
    many: bool  # a flag given again adds to the list


def _option(path: str, info: FieldInfo) -> Option:
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    dashed, upper = path.replace(".", "-").replace("_", "-"), path.replace(".", "_").upper()
    section = path.partition(".")[0] if "." in path else ""
    return Option(
        path,
        str(extra.get("flag", f"--{dashed}")),
        str(extra.get("env", f"ROLLUP_{upper}")),
        str(extra.get("toml", path if section else "")),
        info.description or "",
        path == "verifier.da_dirs",
    )


def _options() -> Iterator[Option]:
    for name, info in Settings.model_fields.items():
        section = SECTIONS.get(name)
        if section is None:
            yield _option(name, info)
        else:
            yield from (_option(f"{name}.{f}", i) for f, i in section.model_fields.items())


OPTIONS: dict[str, Option] = {option.path: option for option in _options()}


def _put(tree: dict[str, Any], path: str, value: Any) -> None:
    section, _, name = path.rpartition(".")
    (tree.setdefault(section, {}) if section else tree)[name] = value


def _get(tree: Mapping[str, Any], path: str) -> Any:
    for part in path.split("."):
        if not isinstance(tree, Mapping) or part not in tree:
            return None
        tree = tree[part]
    return tree


# ---- the sources ----


class Environment(PydanticBaseSettingsSource):
    """ROLLUP_* variables, by the names in OPTIONS; empty ones are unset."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # (all values come from __call__)

    def __call__(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for option in OPTIONS.values():
            if option.env and os.environ.get(option.env):
                _put(found, option.path, os.environ[option.env])
        return found


class RollupToml(PydanticBaseSettingsSource):
    """The settings tables of the rollup.toml in the app directory the flags (or the
    environment) name, each key checked strictly: TOML has types, so "12" is not a number."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        app_dir = self.current_state.get("app_dir")
        if not app_dir or not (Path(app_dir) / "rollup.toml").is_file():
            return {}  # the process says the manifest is missing when it loads the app
        text = (Path(app_dir) / "rollup.toml").read_text(encoding="utf-8")
        return toml_settings(text, Path(app_dir))


def toml_settings(text: str, app_dir: Path) -> dict[str, Any]:
    """The settings a rollup.toml gives, paths made absolute from `app_dir`."""
    manifest = parse_manifest(text)
    found: dict[str, Any] = {}
    for name, table in manifest.settings.items():
        keys = {
            o.toml.partition(".")[2]: o for o in OPTIONS.values() if o.toml.startswith(name + ".")
        }
        for key in table:
            if key not in keys:
                raise ConfigError(f"rollup.toml: {unknown_key(name, key, keys)}")
        try:
            SECTIONS[name].model_validate_json(json.dumps(table, default=str), strict=True)
        except ValidationError as exc:
            raise ConfigError(_message(exc, f"rollup.toml {name}.{{}}".format)) from None
        for key, value in table.items():
            option = keys[key]
            _put(found, option.path, _absolute(value, app_dir) if _is_path(option) else value)
    if manifest.database:
        _put(found, "node.db_url", manifest.database)
    return found


def _is_path(option: Option) -> bool:
    section, _, name = option.path.rpartition(".")
    annotation = str(SECTIONS[section].model_fields[name].annotation)
    return "Path" in annotation


def _absolute(value: Any, base: Path) -> Any:
    if isinstance(value, list):
        return [_absolute(v, base) for v in value]
    return str(base / value)


# ---- loading ----


def add_arguments(parser: argparse.ArgumentParser, paths: Iterable[str]) -> None:
    """The flags of `paths` (settings, or whole sections): absent flags leave the value to the
    environment, rollup.toml and the defaults."""
    chosen = [
        o for o in OPTIONS.values() if any(o.path == p or o.path.startswith(p + ".") for p in paths)
    ]
    for option in chosen:
        sources = [f"${option.env}" if option.env else "", _toml_name(option.toml)]
        where = "; ".join(s for s in sources if s)
        parser.add_argument(
            option.flag,
            dest=option.path,
            default=argparse.SUPPRESS,
            action="append" if option.many else "store",
            metavar=option.path.rpartition(".")[2].upper(),
            help=f"{option.help}" + (f" [{where}]" if where else ""),
        )


def _toml_name(toml: str) -> str:
    table, _, key = toml.partition(".")
    return f"rollup.toml [{table}] {key}" if toml else ""


def flag_values(args: argparse.Namespace) -> dict[str, Any]:
    """The settings the flags gave, as a tree for `Settings(**...)`."""
    found: dict[str, Any] = {}
    for path, value in vars(args).items():
        if path in OPTIONS:
            _put(found, path, value)
    return found


def load_settings(args: argparse.Namespace) -> Settings:
    """The settings from the flags parsed into `args` (by `add_arguments`), the environment
    and rollup.toml; ConfigError naming the flag, variable or key of a bad value."""
    flags = flag_values(args)
    try:
        return Settings(**flags)
    except ValidationError as exc:
        env = Environment(Settings)()
        raise ConfigError(_message(exc, lambda path: _source(path, flags, env))) from None


def _source(path: str, flags: Mapping[str, Any], env: Mapping[str, Any]) -> str:
    option = OPTIONS.get(path)
    if option is None:
        return path
    if _get(flags, path) is not None:
        return option.flag
    if _get(env, path) is not None:
        return option.env
    return f"rollup.toml {option.toml}"


def _message(exc: ValidationError, where: Any) -> str:
    """The first error of `exc` as one line: `WHERE: what was expected (got VALUE)`."""
    error = exc.errors()[0]
    loc = [str(part) for part in error["loc"] if not isinstance(part, int)]
    path = ".".join(loc[:2]) if loc and loc[0] in SECTIONS else ".".join(loc[:1])
    if error["type"] == "extra_forbidden":
        return f"{where(path)}: unknown setting"
    text = str(error["msg"]).removeprefix("Value error, ")
    text = text[0].lower() + text[1:]
    got = error.get("input")
    return f"{where(path)}: {text}" + ("" if "got" in text else f", got {got!r}")


def require(settings: Settings, *paths: str) -> None:
    """ConfigError naming the first of `paths` that no source gave."""
    for path in paths:
        if _get(settings.model_dump(), path) is None:
            option = OPTIONS[path]
            also = [f"${option.env}" if option.env else "", _toml_name(option.toml)]
            hint = " or ".join(a for a in also if a)
            raise ConfigError(f"{option.flag} is required" + (f" (or {hint})" if hint else ""))


def node_admin_token_file() -> Path | None:
    """The node's admin token file, from $ROLLUP_ADMIN_TOKEN_FILE (see the module's docstring)."""
    try:
        return Settings().admin_token_file
    except ValidationError as exc:
        raise ConfigError(_message(exc, _env_name)) from None


def _env_name(path: str) -> str:
    option = OPTIONS.get(path)
    return option.env if option is not None and option.env else path


def writable_dir(path: Path, flag: str = "--data-dir") -> Path:
    """`path`, created if need be, once a file could be made in it; else one ConfigError."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise ConfigError(f"{flag} {path}: cannot write there ({exc.strerror or exc})") from None
    return path
