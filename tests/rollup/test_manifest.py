from pathlib import Path

import pytest

from rollup.errors import ManifestError
from rollup.genesis import DEV_ADDRESSES
from rollup.manifest import BridgeSettings, default_chain_id, parse_amount, parse_manifest
from rollup.transactions import contract_address
from rollup.types import Address


def test_minimal_manifest_gets_defaults() -> None:
    m = parse_manifest('[app]\nname = "demo"\n')
    assert m.vm == "native" and m.code == "app.py" and m.chain_id == default_chain_id("demo")
    assert m.block_interval_ms == 10 and m.base_fee == 10**9 and m.dev_accounts


def test_amounts() -> None:
    assert parse_amount("1 gwei", "x") == 10**9
    assert parse_amount("0.5 ether", "x") == 5 * 10**17
    assert parse_amount("0.1 ether", "x") == 10**17
    assert parse_amount("1.000000000000000001 ether", "x") == 10**18 + 1
    assert parse_amount(7, "x") == 7


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[app", "not valid TOML"),
        ('[app]\nname = "Bad Name"', "app.name"),
        ('[app]\nname = "a"\nvm = "wasm"', "app.vm"),
        ('[app]\nname = "a"\nchain_id = 0', "app.chain_id"),
        ('[app]\nname = "a"\nchain_id = 9007199254740992', "app.chain_id"),
        ('[app]\nname = "a"\n[sequencer]\nbase_fee = "1 dollar"', "sequencer.base_fee"),
        ('[app]\nname = "a"\n[sequencer]\nbase_fee = "0.5 wei"', "sequencer.base_fee"),
        ('[app]\nname = "a"\n[sequencer]\nbase_fee = "x gwei"', "sequencer.base_fee"),
        ('[app]\nname = "a"\n[sequencer]\nblock_interval_ms = -1', "block_interval_ms"),
        ("app = 3", "[app] must be a table"),
    ],
)
def test_bad_manifests_name_the_field(text: str, needle: str) -> None:
    with pytest.raises(ManifestError, match=needle.replace("[", r"\[").replace("]", r"\]")):
        parse_manifest(text)


# ---- the owner: who may upgrade the app ----

DEV0 = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
STRANGER = "0x52908400098527886E0F7030069857D2E4169EE7"  # EIP-55's own example (all upper)
MIXED = "0xde709f2102306220921060314715629080e2fb77"  # EIP-55's all-lower example


def _owner_manifest(owner: str | None, dev_accounts: bool | str = True) -> str:
    flag = dev_accounts if isinstance(dev_accounts, str) else str(dev_accounts).lower()
    line = "" if owner is None else f"owner = {owner}\n"
    return f'[app]\nname = "a"\n[genesis]\ndev_accounts = {flag}\n{line}'


@pytest.mark.parametrize(
    ("owner", "dev_accounts", "expected"),
    [
        (None, True, DEV_ADDRESSES[0]),  # the devnet default: dev account 0
        ("3", True, DEV_ADDRESSES[3]),  # a dev account by index, where dev accounts exist
        (f'"{DEV0}"', True, DEV_ADDRESSES[0]),  # checksummed
        (f'"{DEV0.lower()}"', True, DEV_ADDRESSES[0]),  # lower case
        (f'"{STRANGER}"', True, bytes.fromhex(STRANGER[2:])),  # any address, dev accounts on
        (f'"{STRANGER}"', False, bytes.fromhex(STRANGER[2:])),  # ... or off
        (f'"{MIXED}"', False, bytes.fromhex(MIXED[2:])),
    ],
)
def test_the_owner_is_any_address_or_with_dev_accounts_an_index(
    owner: str | None, dev_accounts: bool, expected: bytes
) -> None:
    manifest = parse_manifest(_owner_manifest(owner, dev_accounts))
    assert manifest.owner == expected and manifest.dev_accounts is dev_accounts


def test_an_evm_app_sits_where_its_owner_deploys_it() -> None:
    text = (
        f'[app]\nname = "e"\nvm = "evm"\ncode = "T.sol"\nclass = "T"\n'
        f'[genesis]\ndev_accounts = false\nowner = "{STRANGER}"\n'
    )
    manifest = parse_manifest(text)
    assert manifest.address == contract_address(Address(bytes.fromhex(STRANGER[2:])), 0)


@pytest.mark.parametrize(
    ("owner", "dev_accounts", "needle"),
    [
        (None, False, "genesis.owner: required when dev_accounts = false"),
        ("0", False, "genesis.owner: dev account index 0 needs dev_accounts = true"),
        (f'"{DEV0}"', False, "genesis.owner: .* is Anvil dev account 0, whose key is public"),
        (f'"{DEV0.lower()}"', False, "is Anvil dev account 0"),
        ("10", True, "genesis.owner: expected an address or a dev account index 0..9, got 10"),
        ("-1", True, "genesis.owner: expected an address or a dev account index 0..9"),
        ('"0x1234"', True, "genesis.owner: expected a 0x-prefixed 20-byte hex address"),
        (f'"{DEV0[2:]}"', True, "genesis.owner: expected a 0x-prefixed"),  # no 0x
        (f'"{DEV0[:-1]}g"', True, "genesis.owner: expected a 0x-prefixed"),  # not hex
        ("true", True, "genesis.owner: expected a 0x-prefixed"),
        ("1.5", True, "genesis.owner: expected a 0x-prefixed"),
        (
            f'"{DEV0[:5]}{DEV0[5].swapcase()}{DEV0[6:]}"',
            True,
            "genesis.owner: .* has a wrong EIP-55 checksum .* write it as " + DEV0,
        ),
    ],
)
def test_bad_owners_give_one_line_naming_the_key(
    owner: str | None, dev_accounts: bool, needle: str
) -> None:
    with pytest.raises(ManifestError, match=needle) as caught:
        parse_manifest(_owner_manifest(owner, dev_accounts))
    assert "\n" not in str(caught.value)


def test_dev_accounts_must_be_a_boolean() -> None:
    with pytest.raises(ManifestError, match="genesis.dev_accounts: expected true or false"):
        parse_manifest(_owner_manifest(None, '"false"'))  # a string is truthy: refuse it


def test_every_shipped_manifest_names_its_owner() -> None:
    root = Path(__file__).resolve().parents[2]
    paths = [
        *root.glob("examples/*/rollup.toml"),
        *root.glob("benchmarks/apps/*/rollup.toml"),
        *root.glob("services/templates/*/rollup.toml.tmpl"),
    ]
    assert len(paths) >= 9
    for path in paths:
        text = path.read_text().replace("{{name}}", "x").replace("{{chain_id}}", "7")
        assert "\nowner = " in text, f"{path} does not name its owner"
        assert parse_manifest(text).owner == DEV_ADDRESSES[0], path


def test_the_bridge_table_has_production_defaults_and_checks_its_windows() -> None:
    base = '[app]\nname = "b"\n[genesis]\ndev_accounts = true\n'
    assert parse_manifest(base).bridge == BridgeSettings(12, 50, 604_800, 1_209_600)
    devnet = parse_manifest(
        base + "[bridge]\nconfirmations = 2\nsequencing_window = 10\n"
        "withdrawal_delay = 5\nescape_window = 60\n"
    )
    assert devnet.bridge == BridgeSettings(2, 10, 5, 60)
    for bad, message in [
        ("confirmations = 10\nsequencing_window = 10\n", "more than bridge.confirmations"),
        ("withdrawal_delay = 100\nescape_window = 100\n", "more than bridge.withdrawal_delay"),
        ("confirmations = -1\n", "bridge.confirmations"),
        ('sequencing_window = "ten"\n', "bridge.sequencing_window"),
    ]:
        with pytest.raises(ManifestError, match=message):
            parse_manifest(base + "[bridge]\n" + bad)


# ---- every mistake: one line naming the key (and the closest known one) ----

A = '[app]\nname = "a"\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # unknown keys and tables, with the closest known name
        ('[app]\nname = "a"\nchainid = 5\n', "app.chainid: unknown key; did you mean chain_id?"),
        (A + "clas = 'T'\n", "app.clas: unknown key; did you mean class?"),
        (
            A + "[genesis]\ndev_account = true\n",
            "genesis.dev_account: unknown key; did you mean dev_accounts?",
        ),
        (
            A + "[sequencer]\nblock_interval = 5\n",
            "sequencer.block_interval: unknown key; did you mean block_interval_ms?",
        ),
        (
            A + "[bridge]\nconfirmation = 3\n",
            "bridge.confirmation: unknown key; did you mean confirmations?",
        ),
        (
            A + "[sequencer]\ncolour = 1\n",
            "sequencer.colour: unknown key (known: block_interval_ms, base_fee, gas_limit, "
            "database)",
        ),
        (A + "[genesys]\nowner = 0\n", "[genesys]: unknown table; did you mean [genesis]?"),
        (A + "[rcp]\ngas_cap = 1\n", "[rcp]: unknown table; did you mean [rpc]?"),
        (
            A + "[zzz]\n",
            "[zzz]: unknown table (known: [app], [genesis], [sequencer], [bridge], "
            "[node], [rpc], [bus], [da], [l1], [log], [verifier])",
        ),
        ("chain_id = 5\n" + A, "chain_id: a key outside every table; did you mean app.chain_id?"),
        ("zzz = 5\n" + A, "zzz: a key outside every table"),
        (A + "[genesis.extra]\nx = 1\n", "genesis.extra: unknown key"),
        # wrong types
        (
            A + '[genesis]\ndev_accounts = "no"\n',
            "genesis.dev_accounts: expected true or false, got 'no'",
        ),
        (
            '[app]\nname = "a"\nchain_id = "5"\n',
            "app.chain_id: expected an integer in 1..9007199254740991, got '5'",
        ),
        ("[app]\nname = 5\n", "app.name: expected 1-32 chars of [a-z0-9-], got 5"),
        (A + "vm = 1\n", "app.vm: expected 'native' or 'evm', got 1"),
        (A + "code = 5\n", "app.code: expected a file name, got 5"),
        (A + "class = 1\n", "app.class: expected a class name, got 1"),
        (A + "init = 3\n", "[app.init] must be a table"),
        (
            A + "[genesis]\ndev_balance = true\n",
            "genesis.dev_balance: expected an amount, got a boolean",
        ),
        (
            A + "[sequencer]\ngas_limit = 1.5\n",
            "sequencer.gas_limit: expected an integer in 100000..4611686018427387904, got 1.5",
        ),
        (A + "[sequencer]\ndatabase = 5\n", "sequencer.database: expected a SQLAlchemy URL, got 5"),
        (A + "rpc = 3\n", "app.rpc: unknown key"),
        ("rpc = 3\n" + A, "[rpc] must be a table"),
        ("genesis = 3\n" + A, "[genesis] must be a table"),
    ],
)
def test_every_manifest_mistake_is_one_line_naming_the_key(text: str, message: str) -> None:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(text)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_the_settings_tables_are_kept_for_the_processes() -> None:
    manifest = parse_manifest(A + '[rpc]\ngas_cap = 1\n[log]\nformat = "json"\n')
    assert manifest.settings == {"rpc": {"gas_cap": 1}, "log": {"format": "json"}}
    assert parse_manifest(A).settings == {}
