"""`rollup bench` end to end at toy sizes: the JSON it prints and that every tx was confirmed.

Benchmarks measure; these tests only check that they run and report complete results (no
timing is asserted). The Anvil peer is skipped to keep them short.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.cli import main

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
