"""Public keys hold no private powers on a real devnet (`rollup up`), tried as an attacker would
with Anvil's published dev keys: an app whose manifest names an owner of its own cannot be
upgraded by any dev key (its code stays), no dev key can commit, revert or register batches on
the DA inbox, and the devnet's own keys are random, kept in files of mode 0600, and appear in
no log, state file, status report, process environment or command line."""

from __future__ import annotations

import re
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_abi import encode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import function_signature_to_4byte_selector, to_checksum_address

from bridge.inbox import BatchInbox
from bridge.l1 import L1Client, L1Rejected
from rollup.genesis import DEV_KEYS
from services.keys import load_key
from services.rpcclient import RpcCallError
from tests.e2e.devnet import REPO, detached_devnet, read_state, recorded_pids, rollup
from tests.support import rpc, rpc_error, wait_for
from vm.native.upgrades import UPGRADE_ADDRESS, UPGRADE_SELECTOR

pytestmark = pytest.mark.e2e

EXAMPLE = REPO / "examples" / "token"
MINT = """

    @method
    def mint(self, to: address, value: uint256) -> bool:
        self.balances[to] += value
        return True
"""


OWNER = Account.create()  # the app's owner: a key no one published


@pytest.fixture(scope="module")
def app_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """examples/token, owned by OWNER instead of dev account 0 (dev accounts stay funded)."""
    target = tmp_path_factory.mktemp("app") / "token"
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns("build", "__pycache__"))
    manifest = target / "rollup.toml"
    text, count = re.subn(
        r'\nowner = "0x[0-9a-fA-F]{40}"\n', f'\nowner = "{OWNER.address}"\n', manifest.read_text()
    )
    assert count == 1 and "dev_accounts = true" in text
    manifest.write_text(text)
    return target


@pytest.fixture(scope="module")
def devnet(app_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with detached_devnet(tmp_path_factory.mktemp("devnet") / "data", str(app_dir)) as net:
        yield net.data_dir


def send(
    url: str,
    chain_id: int,
    account: LocalAccount,
    to: bytes,
    data: bytes = b"",
    value: int = 0,
    gas: int = 100_000,
) -> dict[str, Any]:
    """Sign, send and wait for the receipt."""
    nonce = int(rpc(url, "eth_getTransactionCount", account.address, "pending"), 16)
    tx = {
        "type": 2,
        "chainId": chain_id,
        "nonce": nonce,
        "to": to_checksum_address(to),
        "value": value,
        "gas": gas,
        "maxFeePerGas": 2 * 10**9,
        "maxPriorityFeePerGas": 0,
        "data": data,
    }
    raw = "0x" + bytes(account.sign_transaction(tx).raw_transaction).hex()
    tx_hash = rpc(url, "eth_sendRawTransaction", raw)
    receipt: dict[str, Any] = wait_for(
        lambda: rpc(url, "eth_getTransactionReceipt", tx_hash), "a receipt"
    )
    return receipt


def advance_to(url: str, chain_id: int, height: int) -> None:
    """Blocks are built when there are transactions: send transfers until `height` exists."""
    filler = Account.from_key(DEV_KEYS[8])
    while int(rpc(url, "eth_blockNumber"), 16) < height:
        send(url, chain_id, filler, bytes(19) + b"\x02", value=1, gas=21_000)


def upgrade_call(app: bytes, source: str, height: int) -> bytes:
    args = [to_checksum_address(app), source.encode(), height]
    return UPGRADE_SELECTOR + encode(["address", "bytes", "uint64"], args)


def revert_reason(error: RpcCallError) -> str:
    data = bytes.fromhex(error.data[2:])
    assert data[:4] == function_signature_to_4byte_selector("Error(string)"), error.data
    length = int.from_bytes(data[36:68], "big")
    return data[68 : 68 + length].decode()


def mint_call(app: str, sender: str) -> dict[str, Any]:
    data = function_signature_to_4byte_selector("mint(address,uint256)")
    data += encode(["address", "uint256"], [sender, 10**30])
    return {"from": sender, "to": app, "data": "0x" + data.hex()}


def test_no_dev_key_may_upgrade_an_app_its_manifest_gives_another_owner(
    devnet: Path, app_dir: Path
) -> None:
    (app,) = read_state(devnet)["apps"]
    url, chain_id, address = app["rpc_url"], app["chain_id"], app["address"]
    raw_address = bytes.fromhex(address[2:])
    code_before = rpc(url, "eth_getCode", address, "latest")
    evil = (app_dir / "app.py").read_text() + MINT
    height = int(rpc(url, "eth_blockNumber"), 16) + 3
    data = upgrade_call(raw_address, evil, height)
    for key in DEV_KEYS:  # every dev key is funded on this chain; none owns the app
        attacker = Account.from_key(key)
        receipt = send(url, chain_id, attacker, UPGRADE_ADDRESS, data, gas=3_000_000)
        assert receipt["status"] == "0x0"
    why = rpc_error(
        url,
        "eth_call",
        {
            "from": Account.from_key(DEV_KEYS[0]).address,
            "to": to_checksum_address(UPGRADE_ADDRESS),
            "data": "0x" + data.hex(),
            "gas": hex(3_000_000),
        },
        "latest",
    )
    assert revert_reason(why) == "only the app's owner may upgrade it"
    advance_to(url, chain_id, height + 1)
    assert rpc(url, "eth_getCode", address, "latest") == code_before
    rpc_error(url, "eth_call", mint_call(address, Account.from_key(DEV_KEYS[0]).address), "latest")

    # the owner the manifest names can (so what failed above is ownership, nothing else)
    send(
        url,
        chain_id,
        Account.from_key(DEV_KEYS[9]),
        bytes.fromhex(OWNER.address[2:]),
        value=10**18,
        gas=21_000,
    )
    height = int(rpc(url, "eth_blockNumber"), 16) + 3
    receipt = send(
        url,
        chain_id,
        OWNER,
        UPGRADE_ADDRESS,
        upgrade_call(raw_address, evil, height),
        gas=3_000_000,
    )
    assert receipt["status"] == "0x1"
    advance_to(url, chain_id, height)
    assert rpc(url, "eth_getCode", address, "latest") != code_before
    rpc(url, "eth_call", mint_call(address, OWNER.address), "latest")  # no error: it exists


def test_no_dev_key_may_commit_revert_or_register_batches(devnet: Path) -> None:
    state = read_state(devnet)
    (app,) = state["apps"]
    url, chain_id = app["rpc_url"], app["chain_id"]
    # the honest batcher posts: its key file works
    send(url, chain_id, Account.from_key(DEV_KEYS[1]), bytes(19) + b"\x01", value=1, gas=21_000)
    head = int(rpc(url, "eth_blockNumber"), 16)
    wait_for(
        lambda: int(rpc(url, "eth_getBlockByNumber", "safe", False)["number"], 16) >= head,
        "the poster to commit the chain's blocks",
    )
    inbox_address = bytes.fromhex(state["da"]["inbox"][2:])
    l1_url = state["l1"]["rpc_url"]
    reader = BatchInbox(L1Client(l1_url), inbox_address)
    next_block = reader.next_block(chain_id)
    for key in DEV_KEYS:
        attacker = BatchInbox(L1Client(l1_url, key), inbox_address)
        with pytest.raises(L1Rejected, match="NotBatcher"):
            attacker.commit(chain_id, next_block, next_block + 1000, bytes(32), bytes(32), b"")
        with pytest.raises(L1Rejected, match="NotOwner"):
            attacker.revert_batches(chain_id, 0)
        with pytest.raises(L1Rejected, match="NotOwner"):
            attacker.set_batcher(chain_id, attacker.l1.address)
    assert reader.next_block(chain_id) >= next_block  # only the poster moved it, if anyone
    assert all(
        c.last_block <= int(rpc(url, "eth_blockNumber"), 16)
        for c in reader.commitments(chain_id, 0)
    )


def test_the_devnet_keys_are_random_private_files_that_no_output_shows(devnet: Path) -> None:
    state = read_state(devnet)
    (app,) = state["apps"]
    files = [devnet / "l1" / "owner.key", devnet / "apps" / app["name"] / "batcher.key"]
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    keys = [load_key(path) for path in files]
    assert len(set(keys)) == len(keys)
    assert not {"0x" + k.hex() for k in keys} & set(DEV_KEYS)
    owner, batcher = (Account.from_key(k).address for k in keys)
    assert state["da"]["owner"].lower() == owner.lower()  # addresses may show
    inbox = BatchInbox(L1Client(state["l1"]["rpc_url"]), bytes.fromhex(state["da"]["inbox"][2:]))
    assert inbox.owner().hex() == owner[2:].lower()
    assert inbox.batcher(app["chain_id"]).hex() == batcher[2:].lower()

    status = rollup("status", "--json", "--data-dir", str(devnet))
    assert status.returncode == 0, status.stderr
    outputs = {
        "rollup status --json": status.stdout,
        "devnet.json": (devnet / "devnet.json").read_text(),
    }
    for path in (devnet / "logs").iterdir():
        outputs[str(path)] = path.read_text(errors="replace")
    for pid in recorded_pids(state):  # what other local users may read of a process
        for what in ("environ", "cmdline"):
            outputs[f"/proc/{pid}/{what}"] = (
                Path(f"/proc/{pid}/{what}").read_bytes().decode(errors="replace")
            )
    assert any(owner[2:].lower() in text.lower() for text in outputs.values())
    for key in keys:
        for name, text in outputs.items():
            assert key.hex() not in text.lower(), f"a private key shows in {name}"


def test_a_fake_batch_is_not_adopted_and_the_owner_replaces_it(devnet: Path) -> None:
    """Should the batcher key leak anyway: the poster keeps to its own chain, and the inbox
    owner's revert puts the honest batches back."""
    state = read_state(devnet)
    (app,) = state["apps"]
    url, chain_id = app["rpc_url"], app["chain_id"]

    def safe() -> int:
        return int(rpc(url, "eth_getBlockByNumber", "safe", False)["number"], 16)

    wait_for(lambda: safe() == int(rpc(url, "eth_blockNumber"), 16), "the poster to catch up")
    l1_url, inbox_address = state["l1"]["rpc_url"], bytes.fromhex(state["da"]["inbox"][2:])
    leaked = load_key(devnet / "apps" / app["name"] / "batcher.key")
    thief = BatchInbox(L1Client(l1_url, "0x" + leaked.hex()), inbox_address)
    start = thief.next_block(chain_id)
    fake = thief.commit(chain_id, start, start + 100, bytes(32), bytes(32), b"")
    honest_head = safe()
    send(url, chain_id, Account.from_key(DEV_KEYS[2]), bytes(19) + b"\x03", value=1, gas=21_000)
    node_log = Path(app["log"])
    fix = f"revertBatches({chain_id}, {fake.index})"
    wait_for(lambda: fix in node_log.read_text(errors="replace"), "the poster to report it")
    assert "ForeignBatch" in node_log.read_text(errors="replace")
    assert safe() == honest_head  # the fake head was not adopted

    owner = load_key(devnet / "l1" / "owner.key")
    BatchInbox(L1Client(l1_url, "0x" + owner.hex()), inbox_address).revert_batches(
        chain_id, fake.index
    )
    head = int(rpc(url, "eth_blockNumber"), 16)
    wait_for(lambda: safe() == head, "the poster to post the chain's own blocks again")
    valid = BatchInbox(L1Client(l1_url), inbox_address).commitments(chain_id, 0)
    assert [c.index for c in valid] == list(range(len(valid)))
    assert all(b.first_block == a.last_block + 1 for a, b in zip(valid, valid[1:]))
    assert valid[-1].last_block == head and valid[fake.index].first_block == start
