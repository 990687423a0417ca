"""Deploying the bridge: `deploy_bridge` and chain registration, `rollup l1 deploy` against a
fresh Anvil (one JSON object; one-line errors for a bad key file or an unreachable L1), and the
devnet's L1 setup deploying the Portal beside the inbox and registering every app chain."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.deploy import (
    DEVNET_ESCAPE_WINDOW,
    DEVNET_WITHDRAWAL_DELAY,
    ChainTerms,
    deploy_bridge,
    register_chains,
)
from bridge.inbox import BatchInbox
from bridge.l1 import L1Client, L1Error
from bridge.portal import Portal
from rollup.genesis import DEV_KEYS
from services.anvil import AnvilProcess, free_port
from services.cli import main
from services.keys import create_key, load_key
from services.l1setup import BatcherSpec, prepare_l1

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def anvil() -> Iterator[AnvilProcess]:
    with AnvilProcess() as process:
        yield process


def _funded_key(anvil: AnvilProcess, path: Path) -> L1Client:
    key = create_key(path)
    owner = L1Client(anvil.rpc_url, "0x" + key.hex())
    L1Client(anvil.rpc_url, DEV_KEYS[9]).send(owner.address, value=10**20)
    return owner


def test_deploy_bridge_registers_chains_once(anvil: AnvilProcess) -> None:
    owner = L1Client(anvil.rpc_url, DEV_KEYS[0])
    terms = [ChainTerms(7001), ChainTerms(7002, 5, 60)]
    deployment = deploy_bridge(owner, terms)
    portal = Portal(owner, deployment.portal)
    assert portal.inbox() == deployment.inbox and portal.owner() == owner.address
    assert BatchInbox(owner, deployment.inbox).owner() == owner.address
    production = portal.chain(7001)
    assert (production.registered, production.withdrawal_delay, production.escape_window) == (
        True,
        7 * 24 * 3600,
        14 * 24 * 3600,
    )
    assert portal.chain(7002).withdrawal_delay == 5
    assert register_chains(portal, terms) == []  # registered alike: left alone
    assert register_chains(portal, [ChainTerms(7003, 1, 1)]) == [7003]
    with pytest.raises(L1Error, match="chain 7002 is registered .* with withdrawal delay 5 s"):
        register_chains(portal, [ChainTerms(7002, 6, 60)])
    assert deployment.as_json()["l1_chain_id"] == anvil.chain_id


def test_rollup_l1_deploy_prints_the_addresses(
    anvil: AnvilProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    owner = _funded_key(anvil, tmp_path / "owner.key")
    code = main(
        [
            "l1",
            "deploy",
            "--l1-rpc",
            anvil.rpc_url,
            "--key-file",
            str(tmp_path / "owner.key"),
            "--json",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and len(out.splitlines()) == 1
    record = json.loads(out)
    assert set(record) >= {"inbox", "portal", "owner", "from_block", "l1_chain_id"}
    portal = Portal(owner, bytes.fromhex(record["portal"][2:]))
    assert "0x" + portal.inbox().hex() == record["inbox"]
    assert portal.owner() == owner.address == bytes.fromhex(record["owner"][2:])


def test_rollup_l1_deploy_fails_in_one_line(
    anvil: AnvilProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key_file = tmp_path / "owner.key"

    def run(rpc: str) -> tuple[int, str]:
        code = main(["l1", "deploy", "--l1-rpc", rpc, "--key-file", str(key_file), "--json"])
        captured = capsys.readouterr()
        assert captured.out == ""
        return code, captured.err

    code, err = run(anvil.rpc_url)
    assert code == 1 and err.count("\n") == 1 and "does not exist" in err
    create_key(key_file)
    key_file.chmod(0o644)
    code, err = run(anvil.rpc_url)
    assert code == 1 and err.count("\n") == 1 and "accessible by other users" in err
    key_file.chmod(0o600)
    code, err = run(f"http://127.0.0.1:{free_port()}")
    assert code == 1 and err.count("\n") == 1 and "L1 unreachable" in err
    code, err = run(anvil.rpc_url)  # a key without funds
    assert code == 1 and err.count("\n") == 1 and err.startswith("rollup: error: cannot deploy")


def test_the_devnet_setup_deploys_the_portal_and_registers_each_app(
    anvil: AnvilProcess, tmp_path: Path
) -> None:
    apps = [
        BatcherSpec("alpha", 8011, tmp_path / "alpha.key"),
        BatcherSpec("beta", 8012, tmp_path / "beta.key", withdrawal_delay=2, escape_window=30),
    ]
    first = prepare_l1(anvil.rpc_url, apps, tmp_path / "l1", fund_owner_from=DEV_KEYS[0])
    again = prepare_l1(anvil.rpc_url, apps, tmp_path / "l1", fund_owner_from=DEV_KEYS[0])
    assert again == first  # nothing redeployed, nothing registered twice
    owner = L1Client(anvil.rpc_url, "0x" + load_key(tmp_path / "l1" / "owner.key").hex())
    portal = Portal(owner, first.portal)
    assert portal.owner() == first.owner and portal.inbox() == first.inbox
    alpha, beta = portal.chain(8011), portal.chain(8012)
    assert (alpha.withdrawal_delay, alpha.escape_window) == (
        DEVNET_WITHDRAWAL_DELAY,
        DEVNET_ESCAPE_WINDOW,
    )
    assert (beta.withdrawal_delay, beta.escape_window) == (2, 30)
    record = json.loads((tmp_path / "l1" / "inbox.json").read_text())
    assert record["portal"] == "0x" + first.portal.hex()

    # an inbox recorded before the Portal existed gets a Portal over it
    del record["portal"]
    (tmp_path / "l1" / "inbox.json").write_text(json.dumps(record))
    upgraded = prepare_l1(anvil.rpc_url, apps, tmp_path / "l1", fund_owner_from=DEV_KEYS[0])
    assert upgraded.inbox == first.inbox and upgraded.portal != first.portal
    assert Portal(owner, upgraded.portal).chain(8012).registered

    # an inbox of an older build (it has an owner but keeps no output roots: here the Portal
    # plays it) is replaced, with a Portal over the new one
    (tmp_path / "l1" / "inbox.json").write_text(
        json.dumps(dict(record, address="0x" + first.portal.hex()))
    )
    fresh = prepare_l1(anvil.rpc_url, apps, tmp_path / "l1", fund_owner_from=DEV_KEYS[0])
    assert fresh.inbox not in (first.inbox, first.portal)
    assert Portal(owner, fresh.portal).inbox() == fresh.inbox
