"""The bridge end to end on a devnet, through `rollup bridge ...`: `rollup up --detach` runs
Anvil (automine and a block a second), a native token app and an EVM token app, each with its
DA poster and following the devnet's Portal (devnet windows: 2 confirmations, a 5 s
withdrawal delay, a 60 s escape window).

- ETH and ERC-20 deposits are credited on both apps; `rollup bridge status` and `rollup status`
  show the bridge.
- A forced call (a deposit with --data) runs the token app's `transfer` as the L1 sender.
- Withdraw then finalize raises the L1 target's balance by the amount, for ETH and for a
  bridged token (paid back in the L1 token); finalizing before the delay and finalizing twice
  fail with their one-line reasons.
- The escape hatch: refused while the chain commits; with the native app's node stopped
  (SIGSTOP: the supervisor would restart a killed one) and the escape window passed on the
  L1 (`evm_increaseTime`), a user exits once with its ETH and bridged tokens, re-derived from
  the L1 and the DA data alone; a second exit is refused. Deposits made while the node is
  stopped (never included) are refused once the hatch is open, and `rollup bridge reclaim`
  pays those made before back to their L1 depositors, exactly, once; a deposit the exit root
  executed cannot be reclaimed.
Genesis dev balances are not backed on the L1, so every withdrawal and escape spends what a
deposit brought. The commands run in process (`services.cli.main`, the entry point of
`rollup`), except where the exit code and the one-line message of the real process are
checked. Tests share the devnet and run in file order (the escape, last, leaves the native
chain in exit mode).
"""

from __future__ import annotations

import io
import json
import os
import signal
import time
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from web3 import Web3

from bridge.inbox import BatchInbox
from bridge.l1 import L1Client, L1Rejected
from bridge.portal import Portal, SentDeposit
from bridge.solc import compile_files
from rollup.crypto import keccak
from rollup.deposits import bridged_token_address
from rollup.genesis import DEV_ADDRESSES, DEV_KEYS
from services.cli import main
from services.process import pid_alive
from services.rpcclient import RpcClient
from tests.conftest import render_template
from tests.e2e.devnet import REPO, detached_devnet, read_state, rollup
from tests.support import rpc, wait_for

pytestmark = pytest.mark.e2e

TEST_TOKEN = REPO / "tests" / "bridge" / "contracts" / "TestToken.sol"
NATIVE, EVM = "bnat", "bevm"
CHAIN_IDS = {NATIVE: 905_301, EVM: 905_302}
ETHER = 10**18
DEADLINE = 60.0
TRANSFER = bytes.fromhex("a9059cbb")
BALANCE_OF = bytes.fromhex("70a08231")
DEPOSIT_KEYS = {"l1_tx", "deposit_id", "l2_tx", "l2_block", "seconds"}


@dataclass
class Answer:
    code: int
    out: str
    err: str

    def ok(self) -> dict[str, Any]:
        """The JSON object of a command that succeeded."""
        assert self.code == 0, self.err
        result: dict[str, Any] = json.loads(self.out)
        return result


class Devnet:
    """The devnet of this module: its state, its L1 and its apps' JSON-RPC."""

    def __init__(self, data_dir: Path, state: dict[str, Any]) -> None:
        self.data_dir, self.state = data_dir, state
        self.apps = {a["name"]: a for a in self.state["apps"]}
        self.l1_rpc = self.state["l1"]["rpc_url"]
        self.w3 = Web3(Web3.HTTPProvider(self.l1_rpc))
        record = json.loads((data_dir / "l1" / "inbox.json").read_text())
        self.portal, self.inbox = record["portal"], record["address"]
        self.clients = {
            name: RpcClient(a["rpc_url"], timeout=15.0) for name, a in self.apps.items()
        }

    def bridge(self, *args: str) -> Answer:
        """`rollup bridge ARGS --data-dir DATA`, in process."""
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            try:
                code = main(["bridge", *args, "--data-dir", str(self.data_dir)])
            except SystemExit as exc:  # argparse's usage errors
                code = int(exc.code or 0)
        return Answer(code, out.getvalue(), err.getvalue())

    def bridge_process(self, *args: str) -> Answer:
        """The same, as the `rollup` process a script runs."""
        done = rollup("bridge", *args, "--data-dir", str(self.data_dir), timeout=120)
        return Answer(done.returncode, done.stdout, done.stderr)

    def rpc(self, app: str, method: str, *params: Any) -> Any:
        """One call's result on `app`, over its keep-alive connection."""
        return self.clients[app].call(method, *params)

    def l1(self, method: str, *params: Any) -> Any:
        return rpc(self.l1_rpc, method, *params)

    def close(self) -> None:
        for client in self.clients.values():
            client.close()

    def balance(self, app: str, address: str) -> int:
        return int(self.rpc(app, "eth_getBalance", address, "latest"), 16)

    def token_balance(self, app: str, token: str, holder: str) -> int:
        data = "0x" + (BALANCE_OF + bytes(12) + _raw(holder)).hex()
        return int(self.rpc(app, "eth_call", {"to": token, "data": data}, "latest"), 16)

    def l1_token_balance(self, token: str, holder: str) -> int:
        data = BALANCE_OF + bytes(12) + _raw(holder)
        return int.from_bytes(
            self.w3.eth.call({"to": Web3.to_checksum_address(token), "data": data}), "big"
        )

    def safe(self, app: str) -> int:
        return int(self.rpc(app, "eth_getBlockByNumber", "safe", False)["number"], 16)


def fresh() -> str:
    return "0x" + os.urandom(20).hex()


def _raw(text: str) -> bytes:
    return bytes.fromhex(text.removeprefix("0x"))


# ---- fixtures: one devnet for the module ----


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    root = tmp_path_factory.mktemp("bridge-devnet")
    apps = [
        render_template(root / NATIVE, "token", NATIVE, CHAIN_IDS[NATIVE]),
        render_template(root / EVM, "evm", EVM, CHAIN_IDS[EVM]),
    ]
    with detached_devnet(root / "data", *map(str, apps)) as up:
        net = Devnet(up.data_dir, up.state)
        try:
            yield net
        finally:
            net.close()
            for app in read_state(up.data_dir)["apps"]:  # one may be stopped (SIGSTOP)
                if pid_alive(app["pid"]):
                    os.kill(app["pid"], signal.SIGCONT)


@pytest.fixture(scope="module")
def token(devnet: Devnet) -> str:
    """A TestToken on the devnet's L1 (6 decimals), minted to dev account 0."""
    compiled = compile_files([TEST_TOKEN])["TestToken"]
    owner = L1Client(devnet.l1_rpc, DEV_KEYS[0])
    args = Web3().codec.encode(["string", "string", "uint8"], ["Test Dollar", "TUSD", 6])
    created = owner.send(None, compiled.bytecode + args).contract_address
    assert created is not None
    contract = devnet.w3.eth.contract(address=Web3.to_checksum_address(created), abi=compiled.abi)
    owner.send(
        created,
        _raw(contract.encode_abi("mint", args=[Account.from_key(DEV_KEYS[0]).address, 10**15])),
    )
    return "0x" + created.hex()


@pytest.fixture(params=[NATIVE, EVM])
def app(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


# ---- deposits ----


def test_an_eth_deposit_is_credited_through_the_cli(devnet: Devnet, app: str) -> None:
    to, amount = fresh(), 3 * ETHER // 2
    result = devnet.bridge("deposit", app, "--amount", str(amount), "--to", to, "--json").ok()
    assert result.keys() == DEPOSIT_KEYS
    assert devnet.balance(app, to) == amount
    tx = devnet.rpc(app, "eth_getTransactionByHash", result["l2_tx"])
    assert tx["type"] == "0x7e" and int(tx["blockNumber"], 16) == result["l2_block"]
    assert tx["sourceHash"] == result["deposit_id"] and tx["to"] == to
    receipt = devnet.w3.eth.get_transaction_receipt(result["l1_tx"])
    assert receipt["status"] == 1 and receipt["to"].lower() == devnet.portal
    assert 0 <= result["seconds"] < DEADLINE


def test_an_erc20_deposit_credits_the_bridged_token(devnet: Devnet, token: str, app: str) -> None:
    to, amount = fresh(), 250_000
    result = devnet.bridge(
        "deposit", app, "--amount", str(amount), "--to", to, "--token", token, "--json"
    ).ok()
    assert result.keys() == DEPOSIT_KEYS
    bridged = "0x" + bridged_token_address(_raw(token)).hex()
    assert devnet.token_balance(app, bridged, to) == amount


def test_bridge_status_and_rollup_status_show_the_bridge(devnet: Devnet, app: str) -> None:
    devnet.bridge("deposit", app, "--amount", "1", "--to", fresh(), "--json").ok()
    status = devnet.bridge("status", app, "--json").ok()
    assert (status["portal"], status["inbox"]) == (devnet.portal, devnet.inbox)
    assert status["chain_id"] == CHAIN_IDS[app] and status["registered"]
    assert (status["withdrawal_delay"], status["escape_window"]) == (5, 60)
    assert status["manifest"] == {
        "confirmations": 2,
        "sequencing_window": 10,
        "withdrawal_delay": 5,
        "escape_window": 60,
    }
    deposits = status["deposits"]
    assert deposits["sent"] >= 2 and deposits["pending"] == 0
    assert deposits["included"] == deposits["sent"]
    assert status["l1_origin"]["number"] > 0 and status["eth_balance"] > 0
    assert status["batches"] >= 1 and status["exit_mode"] is None
    assert status["escape_hatch_open"] is False

    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["status", "--json", "--data-dir", str(devnet.data_dir)]) == 0
    (record,) = [a for a in json.loads(out.getvalue())["apps"] if a["name"] == app]
    assert record["bridge"] == {
        "portal": devnet.portal,
        "inbox": devnet.inbox,
        "withdrawal_delay": 5,
        "escape_window": 60,
        "confirmations": 2,
        "sequencing_window": 10,
    }


# ---- forced calls ----


def test_a_forced_call_runs_the_token_apps_transfer_as_the_l1_sender(
    devnet: Devnet, app: str
) -> None:
    """Dev account 0 holds the token app's supply on both chains; its deposit with calldata
    calls `transfer` there as the L1 sender, whatever the sequencer would rather do."""
    recipient, amount = fresh(), 4321
    data = TRANSFER + bytes(12) + _raw(recipient) + amount.to_bytes(32, "big")
    address = devnet.apps[app]["address"]
    result = devnet.bridge(
        "deposit",
        app,
        "--amount",
        "0",
        "--to",
        address,
        "--data",
        "0x" + data.hex(),
        "--gas",
        "300000",
        "--json",
    ).ok()
    assert devnet.token_balance(app, address, recipient) == amount
    receipt = devnet.rpc(app, "eth_getTransactionReceipt", result["l2_tx"])
    topic = "0x" + keccak(b"Transfer(address,address,uint256)").hex()
    (log,) = [entry for entry in receipt["logs"] if entry["topics"][0] == topic]
    assert log["topics"][1] == "0x" + (bytes(12) + DEV_ADDRESSES[0]).hex()
    assert log["topics"][2] == "0x" + (bytes(12) + _raw(recipient)).hex()


# ---- withdrawals ----


def _funded_user(devnet: Devnet, app: str, eth: int) -> Any:
    """A new key whose account on the app chain got `eth` wei by a deposit."""
    user = Account.create()
    devnet.bridge("deposit", app, "--amount", str(eth), "--to", user.address, "--json").ok()
    return user


def test_withdraw_then_finalize_pays_the_l1_target(devnet: Devnet, app: str) -> None:
    user, target, amount = _funded_user(devnet, app, 2 * ETHER), fresh(), ETHER
    started = devnet.bridge(
        "withdraw", app, "--amount", str(amount), "--to", target, "--key", user.key.hex(), "--json"
    ).ok()
    assert started.keys() == {"l2_tx", "withdrawal_hash", "l2_block"}
    (listed,) = devnet.rpc(app, "rollup_getBlockWithdrawals", hex(started["l2_block"]))
    assert listed["hash"] == started["withdrawal_hash"] and listed["target"] == target
    assert devnet.balance(app, user.address) < ETHER  # the amount and the gas left it

    # the output root is posted, not yet past the delay: proven, then refused in one line
    wait_for(lambda: devnet.safe(app) >= started["l2_block"], "the withdrawal's batch")
    early = devnet.bridge("finalize", app, started["withdrawal_hash"], "--no-wait", "--json")
    assert early.code == 1 and early.out == ""
    assert len(early.err.strip().splitlines()) == 1
    assert "is proven" in early.err and "matures at L1 time" in early.err

    done = devnet.bridge("finalize", app, started["withdrawal_hash"], "--json").ok()
    assert done.keys() == {"prove_tx", "finalize_tx", "seconds"}
    assert done["prove_tx"] is None  # the early call proved it
    assert devnet.w3.eth.get_balance(Web3.to_checksum_address(target)) == amount

    again = devnet.bridge_process("finalize", app, started["withdrawal_hash"], "--json")
    assert again.code == 1 and again.out == ""
    assert again.err.strip().splitlines() == [
        f"rollup: error: withdrawal {started['withdrawal_hash']} is already finalized"
    ]
    assert devnet.w3.eth.get_balance(Web3.to_checksum_address(target)) == amount


def test_a_bridged_token_withdrawn_is_paid_in_the_l1_token(
    devnet: Devnet, token: str, app: str
) -> None:
    user, target = _funded_user(devnet, app, ETHER), fresh()
    devnet.bridge(
        "deposit", app, "--amount", "300000", "--to", user.address, "--token", token, "--json"
    ).ok()
    started = devnet.bridge(
        "withdraw",
        app,
        "--amount",
        "200000",
        "--to",
        target,
        "--token",
        token,
        "--key",
        user.key.hex(),
        "--json",
    ).ok()
    bridged = "0x" + bridged_token_address(_raw(token)).hex()
    assert devnet.token_balance(app, bridged, user.address) == 100_000
    key_file = devnet.data_dir / "user.key"  # the same key, on no command line
    key_file.write_text(user.key.hex())
    key_file.chmod(0o600)
    devnet.bridge(
        "withdraw", app, "--amount", "1", "--token", token, "--key-file", str(key_file), "--json"
    ).ok()
    assert devnet.token_balance(app, bridged, user.address) == 99_999
    done = devnet.bridge("finalize", app, started["withdrawal_hash"], "--json").ok()
    assert done["prove_tx"] is not None and done["finalize_tx"] != done["prove_tx"]
    assert devnet.l1_token_balance(token, target) == 200_000


def test_an_unknown_withdrawal_is_refused_in_one_line(devnet: Devnet) -> None:
    unknown = "0x" + keccak(b"no such withdrawal").hex()
    answer = devnet.bridge("finalize", NATIVE, unknown, "--json")
    assert answer.code == 1 and "unknown withdrawal" in answer.err
    assert len(answer.err.strip().splitlines()) == 1


# ---- the escape hatch (last: it leaves the native chain in exit mode) ----


def test_the_escape_hatch_pays_a_user_once_with_the_sequencer_stopped(
    devnet: Devnet, token: str
) -> None:
    user, eth, tokens = fresh(), 5 * ETHER // 2, 123_456
    devnet.bridge("deposit", NATIVE, "--amount", str(eth), "--to", user, "--json").ok()
    last = devnet.bridge(
        "deposit", NATIVE, "--amount", str(tokens), "--to", user, "--token", token, "--json"
    ).ok()
    wait_for(lambda: devnet.safe(NATIVE) >= last["l2_block"], "the deposits' batch")

    early = devnet.bridge("escape", NATIVE, "--account", user, "--token", token, "--json")
    assert early.code == 1 and "escape hatch of chain 905301 is not open" in early.err
    assert len(early.err.strip().splitlines()) == 1

    node = devnet.apps[NATIVE]["pid"]
    os.kill(node, signal.SIGSTOP)  # the sequencer (and its poster) stop committing
    try:
        time.sleep(1.0)  # a commitment sent just before is mined by then
        stranded = _stranded_deposits(devnet, token, user)
        closed = devnet.bridge("reclaim", NATIVE, str(stranded[0].deposit.nonce), "--json")
        assert closed.code == 1 and "escape hatch of chain 905301 is not open" in closed.err
        inbox = BatchInbox(L1Client(devnet.l1_rpc), _raw(devnet.inbox))
        opens_after = inbox.last_commit_time(CHAIN_IDS[NATIVE]) + 60
        now = int(devnet.w3.eth.get_block("latest")["timestamp"])
        devnet.l1("evm_increaseTime", max(opens_after - now + 2, 0))
        devnet.l1("evm_mine")
        with pytest.raises(L1Rejected, match=rf"EscapeHatchOpen\({CHAIN_IDS[NATIVE]}, "):
            _portal(devnet, ETH_DEPOSITOR).deposit_eth(CHAIN_IDS[NATIVE], _raw(user), 1)

        before = devnet.w3.eth.get_balance(Web3.to_checksum_address(user))
        result = devnet.bridge("escape", NATIVE, "--account", user, "--token", token, "--json").ok()
        assert result.keys() == {"escape_tx", "account", "paid", "seconds"}
        assert result["account"] == user and result["paid"] == {"eth": eth, token: tokens}
        assert devnet.w3.eth.get_balance(Web3.to_checksum_address(user)) == before + eth
        assert devnet.l1_token_balance(token, user) == tokens

        again = devnet.bridge_process(
            "escape", NATIVE, "--account", user, "--token", token, "--json"
        )
        assert again.code == 1 and again.out == ""
        assert again.err.strip().splitlines() == [
            f"rollup: error: account {user} already escaped from chain {CHAIN_IDS[NATIVE]}"
        ]
        _reclaim_the_stranded_deposits(devnet, token, user, stranded)
    finally:
        os.kill(node, signal.SIGCONT)


STRANDED_ETH, STRANDED_TOKENS = 7 * ETHER // 4, 4_321
ETH_DEPOSITOR = 6  # the dev account that makes the stranded ETH deposit (and nothing else)


def _stranded_deposits(devnet: Devnet, token: str, user: str) -> list[SentDeposit]:
    """An ETH and an ERC-20 deposit that the stopped sequencer never includes."""
    chain = CHAIN_IDS[NATIVE]
    eth = _portal(devnet, ETH_DEPOSITOR).deposit_eth(chain, _raw(user), STRANDED_ETH)
    owner = _portal(devnet, 0)
    owner.approve_token(_raw(token), STRANDED_TOKENS)
    tokens = owner.deposit_erc20(chain, _raw(token), _raw(user), STRANDED_TOKENS)
    return [eth, tokens]


def _reclaim_the_stranded_deposits(
    devnet: Devnet, token: str, user: str, stranded: list[SentDeposit]
) -> None:
    chain, eth, tokens = CHAIN_IDS[NATIVE], stranded[0].deposit, stranded[1].deposit
    with pytest.raises(L1Rejected, match=rf"ChainInExitMode\({chain}, "):  # since the escape
        _portal(devnet, ETH_DEPOSITOR).deposit_eth(chain, _raw(user), 1)

    depositor = Web3.to_checksum_address(DEV_ADDRESSES[ETH_DEPOSITOR])
    before = devnet.w3.eth.get_balance(depositor)
    paid = devnet.bridge("reclaim", NATIVE, str(eth.nonce), "--json").ok()  # dev account 0 pays
    assert paid.keys() == {"reclaim_tx", "amount", "token"}
    assert (paid["amount"], paid["token"]) == (STRANDED_ETH, None)
    assert devnet.w3.eth.get_balance(depositor) == before + STRANDED_ETH

    owner = "0x" + DEV_ADDRESSES[0].hex()
    held = devnet.l1_token_balance(token, owner)
    paid = devnet.bridge("reclaim", NATIVE, str(tokens.nonce), "--json").ok()
    assert (paid["amount"], paid["token"]) == (STRANDED_TOKENS, token)
    assert devnet.l1_token_balance(token, owner) == held + STRANDED_TOKENS

    again = devnet.bridge_process("reclaim", NATIVE, str(eth.nonce), "--json")
    assert again.code == 1 and again.out == ""
    assert again.err.strip().splitlines() == [
        f"rollup: error: deposit {eth.nonce} of chain {chain} is already reclaimed"
    ]
    executed = devnet.bridge("reclaim", NATIVE, str(eth.nonce - 1), "--json")  # `last` above
    assert executed.code == 1 and len(executed.err.strip().splitlines()) == 1
    assert f"deposit {eth.nonce - 1} of chain {chain} was executed by the exit root" in (
        executed.err
    )


def _portal(devnet: Devnet, dev_account: int) -> Portal:
    return Portal(L1Client(devnet.l1_rpc, DEV_KEYS[dev_account]), _raw(devnet.portal))
