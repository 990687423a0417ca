"""The manifest's owner at genesis: any address owns the app (may upgrade it, receives what
`init` gives its caller, deploys an EVM app), and dev keys have power only where the manifest
enables dev accounts."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from eth_account import Account

from rollup.genesis import DEV_ADDRESSES
from rollup.manifest import parse_manifest
from rollup.transactions import contract_address
from rollup.types import Address
from sequencer.harness import LocalChain
from services.apps import load_app
from vm.evm.artifact import Artifact
from vm.genesis import build_genesis
from vm.native.abi import encode_values
from vm.native.upgrades import UPGRADE_ADDRESS, UPGRADE_SELECTOR, owner_key
from vm.state import DictReader, State, code_key, get_account

REPO = Path(__file__).resolve().parents[2]
OWNER = Address(bytes.fromhex(Account.create().address[2:]))  # a key no one published
SUPPLY = 10**24  # the token template's


def set_genesis(app_dir: Path, owner: bytes, dev_accounts: bool) -> None:
    path = app_dir / "rollup.toml"
    text = re.sub(
        r'\nowner = "0x[0-9a-fA-F]{40}"\n', f'\nowner = "0x{owner.hex()}"\n', path.read_text()
    )
    text = text.replace("dev_accounts = true", f"dev_accounts = {str(dev_accounts).lower()}")
    path.write_text(text)
    manifest = parse_manifest(text)
    assert manifest.owner == owner and manifest.dev_accounts is dev_accounts


def test_a_native_app_is_owned_by_the_address_its_manifest_names(token_app: Path) -> None:
    set_genesis(token_app, OWNER, dev_accounts=True)
    with LocalChain.from_dir(token_app) as chain:
        state = chain.node.state
        assert state.get(owner_key(chain.app.address)) == OWNER
        assert chain.call("balanceOf", OWNER) == SUPPLY  # init ran as the owner
        assert chain.call("balanceOf", DEV_ADDRESSES[0]) == 0
        source = (token_app / "app.py").read_text() + "\n\ndef minted() -> int:\n    return 1\n"
        for dev in DEV_ADDRESSES:  # every dev key is funded here, and none may upgrade
            data = UPGRADE_SELECTOR + encode_values(
                ["address", "bytes", "uint64"],
                [chain.app.address, source.encode(), chain.node.committed.number + 2],
            )
            receipt = chain.send_raw(chain.sign(dev, UPGRADE_ADDRESS, data, gas=2_000_000))
            assert receipt.status == 0
            assert b"only the app's owner may upgrade it" in receipt.return_data


def test_without_dev_accounts_no_dev_key_holds_anything(token_app: Path) -> None:
    set_genesis(token_app, OWNER, dev_accounts=False)
    with LocalChain.from_dir(token_app) as chain:
        state = chain.node.state
        assert all(get_account(state, dev) == (0, 0) for dev in DEV_ADDRESSES)
        assert state.get(owner_key(chain.app.address)) == OWNER
        assert chain.call("balanceOf", OWNER) == SUPPLY


def test_an_evm_app_is_deployed_by_its_owner(tmp_path: Path) -> None:
    app_dir = tmp_path / "erc20"
    shutil.copytree(
        REPO / "examples" / "erc20", app_dir, ignore=shutil.ignore_patterns("build", "__pycache__")
    )
    set_genesis(app_dir, OWNER, dev_accounts=False)
    bundle = load_app(app_dir)
    assert isinstance(bundle.code, Artifact)
    manifest = bundle.manifest
    assert manifest.address == contract_address(OWNER, 0)
    _header, changes = build_genesis(manifest, bundle.code, DictReader())
    state = State(DictReader({k: v for k, (_, v) in changes.items() if v is not None}))
    assert state.get(code_key(manifest.address))  # the contract is there
    assert get_account(state, OWNER) == (1, 0)  # its creation used the owner's nonce 0
    assert all(get_account(state, dev) == (0, 0) for dev in DEV_ADDRESSES)
