"""services/bridge_cli.py without an L1: the checks of a node's withdrawal proof, finding a
transaction's withdrawal among its block's, the included-deposits bisection, the inbox cut
at an escape's batch, and how `rollup bridge` fails (one line, exit 1; bad usage, exit 2).
The workflows against a real devnet are in tests/e2e/test_bridge_devnet.py."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bridge.portal import OutputRootProof
from da.commitment import CommitmentRecord, RevertRecord
from rollup.crypto import keccak
from rollup.types import ZERO_ADDRESS, Address
from rollup.withdrawals import TreeBranch, Withdrawal, append_leaf, branch_root, tree_proof
from services.bridge_cli import (
    BridgeError,
    InboxUpTo,
    _listed_fields,
    _withdrawal_fields,
    account_balance,
    first_missing,
    open_target,
    parse_withdrawal_proof,
    status_bridge,
    withdrawal_index,
)
from services.cli import main
from services.rpc.bridge import withdrawal_json
from vm.bridge import withdrawal_log
from vm.interface import WithdrawalRequest

CHAIN = 905_999


def _withdrawals(n: int) -> list[Withdrawal]:
    return [
        Withdrawal(
            CHAIN,
            i,
            Address(keccak(b"s%d" % i)[12:]),
            Address(keccak(b"t%d" % i)[12:]),
            10**15 * (i + 1),
            ZERO_ADDRESS,
            0,
            0,
            b"",
        )
        for i in range(n)
    ]


def _proof_answer(withdrawals: list[Withdrawal], nonce: int) -> dict[str, Any]:
    """What rollup_getWithdrawalProof answers for withdrawal `nonce` (services/rpc/bridge.py)."""
    branch = TreeBranch.empty()
    for w in withdrawals:
        branch = append_leaf(branch, w.hash)
    output = OutputRootProof(keccak(b"state"), branch_root(branch), keccak(b"block"))
    w = withdrawals[nonce]
    return {
        "withdrawal": withdrawal_json(w),
        "hash": "0x" + w.hash.hex(),
        "batchIndex": "0x3",
        "outputRoot": "0x" + output.root.hex(),
        "count": hex(len(withdrawals)),
        "outputRootProof": {
            "stateRoot": "0x" + output.state_root.hex(),
            "withdrawalsRoot": "0x" + output.withdrawals_root.hex(),
            "blockHash": "0x" + output.block_hash.hex(),
        },
        "siblings": ["0x" + s.hex() for s in tree_proof([x.hash for x in withdrawals], nonce)],
    }


# ---- a node's withdrawal proof is checked before the L1 sees it ----


def test_a_sound_proof_decodes_to_what_prove_withdrawal_takes() -> None:
    withdrawals = _withdrawals(5)
    proof = parse_withdrawal_proof(_proof_answer(withdrawals, 3), withdrawals[3].hash)
    assert proof.withdrawal == withdrawals[3] and proof.batch_index == 3 and proof.count == 5
    assert len(proof.siblings) == 32


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (lambda a: a["withdrawal"].update(value="0x1"), "hashes to"),
        (lambda a: a.update(outputRoot="0x" + "11" * 32), "does not hash to its output root"),
        (lambda a: a["siblings"].__setitem__(0, "0x" + "22" * 32), "tree proof"),
        (lambda a: a.update(count="0x3"), "tree proof"),
        (lambda a: a["siblings"].pop(), "tree proof"),
        (lambda a: a.pop("outputRootProof"), "does not decode"),
        (lambda a: a["withdrawal"].update(nonce="zz"), "does not decode"),
    ],
)
def test_a_wrong_proof_from_the_node_is_refused(tamper: Any, reason: str) -> None:
    withdrawals = _withdrawals(5)
    answer = _proof_answer(withdrawals, 3)
    tamper(answer)
    with pytest.raises(BridgeError, match=reason):
        parse_withdrawal_proof(answer, withdrawals[3].hash)


# ---- which withdrawal a transaction started ----


def test_a_transactions_withdrawal_is_found_among_identical_ones() -> None:
    assert withdrawal_index(1, ["0xa"], "0xa") == 0
    assert withdrawal_index(3, ["0xa", "0xb", "0xc"], "0xb") == 1
    # two started by inbound cross-app calls (no receipts) run before the transactions
    assert withdrawal_index(4, ["0xa", "0xb"], "0xa") == 2
    with pytest.raises(BridgeError):
        withdrawal_index(1, ["0xa", "0xb"], "0xb")
    with pytest.raises(BridgeError):
        withdrawal_index(2, ["0xa"], "0xz")


def test_a_withdrawal_log_reads_like_its_listed_withdrawal() -> None:
    w = Withdrawal(
        CHAIN,
        7,
        Address(b"\x01" * 20),
        Address(b"\x02" * 20),
        5,
        Address(b"\x03" * 20),
        9,
        21_000,
        b"\xca\xfe",
    )
    log = withdrawal_log(
        WithdrawalRequest(
            w.sender, w.target, w.value, w.l1_token, w.token_amount, w.gas_limit, w.data
        )
    )
    as_json = {
        "address": "0x" + log.address.hex(),
        "topics": ["0x" + t.hex() for t in log.topics],
        "data": "0x" + log.data.hex(),
    }
    assert _withdrawal_fields(as_json) == _listed_fields(withdrawal_json(w))
    assert _withdrawal_fields(dict(as_json, address="0x" + "00" * 19 + "05")) is None
    assert _withdrawal_fields(dict(as_json, topics=as_json["topics"][:1])) is None


# ---- deposits, escapes ----


@pytest.mark.parametrize("count", [0, 1, 2, 7, 64])
def test_the_included_deposits_are_found_by_bisection(count: int) -> None:
    for included in range(count + 1):
        asked: list[int] = []

        def present(nonce: int, included: int = included, asked: list[int] = asked) -> bool:
            asked.append(nonce)
            return nonce < included

        assert first_missing(count, present) == included
        assert len(asked) <= max(count, 1).bit_length() + 1


def test_an_accounts_balance_is_read_from_its_state_value() -> None:
    assert account_balance(bytes(8)) == 0
    assert account_balance((7).to_bytes(8, "big") + (10**18).to_bytes(8, "big")) == 10**18


class FakeInbox:
    """The L1 inbox as a verifier reads it (da/commitment.py's `InboxReader`)."""

    def __init__(self, records: Sequence[CommitmentRecord]) -> None:
        self.records = list(records)

    def commitments(
        self, chain_id: int, from_l1_block: int, to_l1_block: int | None = None
    ) -> Sequence[CommitmentRecord]:
        return [r for r in self.records if r.chain_id == chain_id]

    def reverts(
        self, chain_id: int, from_l1_block: int, to_l1_block: int | None = None
    ) -> Sequence[RevertRecord]:
        return []

    def l1_block_number(self, tag: str = "latest") -> int:
        return 99


@dataclass(frozen=True)
class Record:
    """The fields of a commitment the cut reads."""

    chain_id: int
    index: int


def _commitment(chain_id: int, index: int) -> Any:
    return Record(chain_id, index)


def test_an_escape_reads_its_chain_only_up_to_the_exit_batch() -> None:
    inbox = FakeInbox(
        [_commitment(CHAIN, i) for i in range(5)] + [_commitment(7, i) for i in range(5)]
    )
    cut = InboxUpTo(inbox, CHAIN, 2)
    assert [c.index for c in cut.commitments(CHAIN, 0)] == [0, 1, 2]
    assert [c.index for c in cut.commitments(7, 0)] == [0, 1, 2, 3, 4]  # a source chain: whole
    assert cut.l1_block_number() == 99 and cut.reverts(CHAIN, 0) == []


# ---- the command line: where the devnet is, and how it fails ----


def _state(data_dir: Path, app_dir: Path) -> Any:
    """A devnet state file whose supervisor is this process (so it counts as running)."""
    app = {
        "name": "tok",
        "chain_id": CHAIN,
        "vm": "native",
        "address": "0x" + "00" * 20,
        "app_dir": str(app_dir),
        "rpc_url": "http://127.0.0.1:1",
        "port": 1,
        "pid": 1,
        "data_dir": str(data_dir / "apps" / "tok"),
        "log": "",
        "restarts": 0,
        "verifier": None,
    }
    state = {
        "version": 1,
        "supervisor_pid": os.getpid(),
        "data_dir": str(data_dir),
        "logs_dir": str(data_dir / "logs"),
        "apps": [app],
        "da": None,
        "l1": {"rpc_url": "http://127.0.0.1:1", "pid": None, "log": None},
        "bus": {},
    }
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "devnet.json").write_text(json.dumps(state))
    return state


def test_the_app_and_its_bridge_come_from_the_devnet(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    state = _state(data_dir, tmp_path / "app")
    with pytest.raises(BridgeError, match=r"no app 'other' in the devnet .* \(apps: tok\)"):
        open_target(data_dir, "other")
    with pytest.raises(BridgeError, match="has no L1 bridge"):
        open_target(data_dir, "tok")
    assert status_bridge(state, state["apps"][0]) is None
    record = {
        "address": "0x" + "aa" * 20,
        "block": 3,
        "l1_chain_id": 31337,
        "portal": "0x" + "bb" * 20,
    }
    (data_dir / "l1").mkdir()
    (data_dir / "l1" / "inbox.json").write_text(json.dumps(record))
    target = open_target(data_dir, "tok")
    assert (target.portal, target.inbox, target.from_block) == (b"\xbb" * 20, b"\xaa" * 20, 3)
    assert target.chain_id == CHAIN and target.rpc_url == "http://127.0.0.1:1"
    # no manifest readable: the addresses alone
    assert status_bridge(state, state["apps"][0]) == {
        "portal": record["portal"],
        "inbox": record["address"],
    }


@pytest.mark.parametrize(
    "argv",
    [
        ["status", "tok"],
        ["deposit", "tok", "--amount", "1"],
        ["withdraw", "tok", "--amount", "1"],
        ["finalize", "tok", "0x" + "ab" * 32],
        ["escape", "tok"],
    ],
)
def test_without_a_devnet_each_command_fails_in_one_line(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bridge", *argv, "--json", "--data-dir", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        f"rollup: error: no devnet is running from {tmp_path}; start one with `rollup up`"
    ]


@pytest.mark.parametrize(
    "argv",
    [
        ["deposit", "tok"],  # --amount is required
        ["deposit", "tok", "--amount", "-1"],
        ["deposit", "tok", "--amount", "1", "--to", "0x1234"],
        ["deposit", "tok", "--amount", "1", "--data", "0xzz"],
        ["withdraw", "tok", "--amount", "1", "--key", "0x01"],
        ["finalize", "tok", "0x" + "ab" * 31],
        ["escape", "tok", "--token", "nothex"],
    ],
)
def test_bad_arguments_are_usage_errors(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["bridge", *argv])
    assert exited.value.code == 2
    assert "rollup bridge" in capsys.readouterr().err


def test_the_key_defaults_to_dev_account_0_and_says_it_is_public(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["bridge", "deposit", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "dev account 0, whose key is public" in help_text
