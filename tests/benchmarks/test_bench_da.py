"""`rollup bench da` at a toy size: the JSON it prints and that every transfer was posted and
re-derived (no figure is asserted; they depend on the machine)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.cli import main

pytestmark = pytest.mark.e2e


def test_da_json_every_transfer_posted_and_re_derived(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    argv = [
        "da",
        "--n",
        "200",
        "--batch",
        "50",
        "--concurrency",
        "2",
        "--json",
        "--results-dir",
        str(tmp_path),
    ]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result == json.loads((tmp_path / "da.json").read_text())
    assert {"bytes_per_native_transfer", "bytes_per_erc20_transfer", "verify_speedup"} <= set(
        result
    )
    native, erc20 = result["phases"]["native"], result["phases"]["erc20"]
    assert native["n"] == erc20["n"] == 200
    # the verifier re-executed both phases and the token funding (9 transfers)
    assert result["verifier"]["txs"] == 409 and result["verify_speedup"] > 0
    assert 0 < result["bytes_per_native_transfer"] < native["raw_bytes_per_transfer"]
    assert 0 < result["bytes_per_erc20_transfer"] < erc20["raw_bytes_per_transfer"]
