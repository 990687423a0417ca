"""`rollup bench` end to end at toy sizes: the JSON it prints and that every tx was confirmed.

Benchmarks measure; these tests only check that they run and report complete results (no
timing is asserted). The Anvil peer is skipped to keep them short, except for `evm`, whose
peer needs its own set-up (the Token deployed on Anvil first).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.cli import main
from benchmarks.common import BenchError
from rollup.genesis import DEV_ADDRESSES

pytestmark = pytest.mark.e2e


def run(argv: list[str], capsys: pytest.CaptureFixture[str], results: Path) -> dict:
    assert main([*argv, "--results-dir", str(results)]) == 0
    printed = json.loads(capsys.readouterr().out)
    written = json.loads((results / f"{argv[0]}.json").read_text())
    assert printed == written
    return printed


def test_transfers_json_and_every_transfer_confirmed(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    result = run(["transfers", "--n", "400", "--no-peer", "--json"], capsys, tmp_path)
    assert {"tx_per_s", "peer_tx_per_s", "ratio"} <= result.keys()
    assert result["tx_per_s"] > 0
    assert result["peer_tx_per_s"] is None and result["ratio"] is None
    assert result["n"] == result["confirmed"] == 400
    assert result["errors"] == 0


def test_transfers_batches_and_connections_split_the_work(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    argv = ["transfers", "--n", "301", "--batch", "7", "--concurrency", "3", "--no-peer", "--json"]
    result = run(argv, capsys, tmp_path)
    assert result["ours"]["confirmed"] == result["ours"]["n"] == 301
    assert result["ours"]["blocks"] >= 1


def test_latency_json_and_probes_confirmed(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    argv = ["latency", "--seconds", "1", "--rate", "200", "--no-peer", "--json"]
    result = run(argv, capsys, tmp_path)
    assert {"p50_ms", "p99_ms", "peer_p50_ms", "peer_p99_ms"} <= result.keys()
    assert result["probes"] > 0
    assert 0 < result["p50_ms"] <= result["p99_ms"] <= result["max_ms"]
    assert result["ours"]["achieved_rate"] > 0


def test_bad_arguments_fail_cleanly(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    argv = [
        "transfers",
        "--n",
        "10",
        "--batch",
        "5000",
        "--no-peer",
        "--results-dir",
        str(tmp_path),
    ]
    assert main(argv) == 1
    assert "batch" in capsys.readouterr().err
    assert not (tmp_path / "transfers.json").exists()


def test_orderbook_json_every_order_confirmed_and_overhead_reported(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    argv = ["orderbook", "--n", "200", "--batch", "50", "--overhead-orders", "300", "--json"]
    result = run(argv, capsys, tmp_path)
    assert {"orders_per_s", "metering_overhead"} <= result.keys()
    assert result["orders"] == 200 and result["fills"] > 0
    assert isinstance(result["metering_overhead"], float)


def test_evm_json_ours_and_anvil_every_transfer_and_balance_checked(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    argv = [
        "evm",
        "--n",
        "120",
        "--batch",
        "40",
        "--concurrency",
        "2",
        "--peer-n",
        "60",
        "--peer-batch",
        "30",
        "--json",
    ]
    result = run(argv, capsys, tmp_path)
    assert {"tx_per_s", "peer_tx_per_s", "ratio"} <= result.keys()
    assert result["tx_per_s"] > 0 and result["peer_tx_per_s"] > 0 and result["ratio"] > 0
    ours, peer = result["ours"], result["peer"]
    assert ours["n"] == ours["confirmed"] == 120 and peer["n"] == peer["confirmed"] == 60
    # every recipient (measured and warm-up transfers) and the ten senders
    assert ours["checked_balances"] == 120 + 10 * 20 + 10
    # a transfer to a new holder: ~51.5k gas on both (amounts are random, so calldata varies)
    assert 45_000 < ours["gas_per_tx"] < 60_000 and 45_000 < peer["gas_per_tx"] < 60_000


def test_evm_soak_json_curve_and_final_state_checked(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    argv = [
        "evm-soak",
        "--transfers",
        "3000",
        "--block-txs",
        "500",
        "--recipients",
        "50",
        "--sample-every",
        "1000",
        "--chunk",
        "1000",
        "--warmup",
        "1000",
        "--json",
    ]
    result = run(argv, capsys, tmp_path)
    assert result["completed"] and result["transfers"] == 3000
    assert [s["transfers"] for s in result["samples"]] == [0, 1000, 2000, 3000]
    assert all(s["rss_mb"] > 0 for s in result["samples"])
    assert result["checked"] == {"receipts_status_1": 3000, "nonces": 10, "balances": 60}
    # a bounded recipient set: the state stops growing once every recipient holds tokens
    assert result["samples"][1]["state_keys"] == result["samples"][-1]["state_keys"]
    assert isinstance(result["slope_mb_per_100k_after_warmup"], float)


def test_evm_checks_catch_a_wrong_transfer_log() -> None:
    from benchmarks.evm import TRANSFER_TOPIC, Signed, check_receipts
    from benchmarks.targets import Target

    token, sender, to, amount = b"\x11" * 20, 3, b"\x07" * 20, 5
    signed = Signed({}, {"0xaa": (sender, to, amount)})
    log = {
        "address": "0x" + token.hex(),
        "topics": [
            TRANSFER_TOPIC,
            "0x" + "00" * 12 + DEV_ADDRESSES[sender].hex(),
            "0x" + "00" * 12 + to.hex(),
        ],
        "data": hex(amount),
    }
    target = Target("t", "", 1, None)

    def check(status: str, logs: list[dict]) -> None:
        check_receipts(target, token, signed, {"0xaa": {"status": status, "logs": logs}})

    check("0x1", [log])
    with pytest.raises(BenchError, match="logged"):
        check("0x1", [{**log, "data": hex(amount + 1)}])
    with pytest.raises(BenchError, match="logged"):
        check("0x1", [log, log])
    with pytest.raises(BenchError, match="failed"):
        check("0x0", [log])


def test_soak_slope_is_least_squares_past_warmup() -> None:
    from benchmarks.evm_soak import slope_per_100k

    samples = [
        {"transfers": x, "rss_mb": 500.0 if x < 100_000 else 100 + x / 10_000}
        for x in range(0, 500_001, 50_000)
    ]
    assert slope_per_100k(samples, 100_000) == 10.0
    assert slope_per_100k(samples, 500_000) is None


def test_bus_json_on_both_transports(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    argv = ["bus", "--probes", "5", "--messages", "200", "--per-tx", "50", "--json"]
    result = run(argv, capsys, tmp_path)
    assert set(result["transports"]) == {"embedded", "nats"}
    for measured in result["transports"].values():
        assert {"p50_ms", "p99_ms", "msgs_per_s", "oneway_msgs_per_s"} <= measured.keys()
        assert measured["probes"] == 5
        assert measured["round_trip"]["messages"] == measured["one_way"]["messages"] == 200
        assert 0 < measured["p50_ms"] <= measured["p99_ms"] <= measured["max_ms"]


def test_abuse_every_attack_is_answered_within_its_bounds_and_transfers_go_on(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Finding 4 and 5 of the security review, performed against real nodes: during each
    attack the steady stream's transfers are all included and the probe is answered; each
    attack gets its bounded answer (the timings are the benchmark's, not asserted here)."""
    argv = [
        "abuse",
        "--seconds",
        "1",
        "--rate",
        "20",
        "--attackers",
        "2",
        "--flood-accounts",
        "50",
        "--json",
    ]
    result = run(argv, capsys, tmp_path)
    assert set(result["attacks"]) == {
        "estimate_heavy",
        "call_loop_evm",
        "proof_slots",
        "logs_range",
        "filters",
        "ws_slow",
        "http_flood",
        "pool_flood",
    }
    for name, phase in {**result["baseline"], **result["attacks"]}.items():
        assert phase["transfers"] > 0 and phase["transfer_errors"] == 0, name
        assert phase["probes"] > 0 and phase["p99_ms_under_attack"] is not None, name
    answers = {name: phase["attack_answers"] for name, phase in result["attacks"].items()}
    assert set(answers["estimate_heavy"]) == {"error -32000: gas required exceeds allowance"}
    assert set(answers["call_loop_evm"]) == {"error -32000: out of gas"}
    assert set(answers["proof_slots"]) == {"error -32005: too many storage slots:"}
    assert set(answers["logs_range"]) == {"result"}
    assert all(phase["attack_requests"] for phase in result["attacks"].values())
    # fresh accounts funded for one transfer cannot queue 64: all but the first are refused
    flood = answers["pool_flood"]
    assert flood.get("result", 0) <= 50 and sum(flood.values()) > 50


def test_bridge_json_deposits_withdrawal_and_l1_gas_beside_op(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """On a devnet: timed deposits, a burst every deposit of which is credited (the benchmark
    checks that none is pending), a withdrawal finalized, and the L1 gas of each path."""
    argv = ["bridge", "--probes", "2", "--burst", "30", "--senders", "2", "--json"]
    result = run(argv, capsys, tmp_path)
    assert 0 < result["deposit_p50_s"] <= result["deposit_max_s"]
    assert result["deposits_per_s"] > 0 and result["withdraw_to_final_s"] > 0
    assert result["burst_detail"]["n"] == 30 and result["burst_detail"]["l2_blocks"] >= 1
    assert set(result["l1_gas"]) == {
        "depositETH",
        "depositETH_warm",
        "depositERC20",
        "depositERC20_warm",
        "proveWithdrawal",
        "finalizeWithdrawal",
    }
    gas = result["l1_gas"]
    for name, used in gas.items():
        assert 0 < used["execution"] < used["receipt"], name
    assert gas["depositETH_warm"]["receipt"] < gas["depositETH"]["receipt"]
    assert gas["proveWithdrawal"]["op_execution"] == 169_229
