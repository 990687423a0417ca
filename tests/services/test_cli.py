"""The `rollup` CLI without a devnet: `new` writes a working app, `abi` describes it, and the
devnet commands fail clearly when there is nothing to act on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from eth_utils import event_abi_to_log_topic, function_abi_to_4byte_selector, keccak

from rollup.manifest import default_chain_id, parse_manifest
from services.cli import main
from services.scaffold import render
from vm.native.abi_json import abi_param

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "services" / "templates" / "token"
EXAMPLE = REPO / "examples" / "token"
APP_TEST_TIMEOUT = 120.0


def new_app(parent: Path, name: str = "demo", *extra: str) -> Path:
    assert main(["new", name, "--template", "token", "--dir", str(parent), *extra]) == 0
    return parent / name


def abi_of(app_dir: Path, capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    capsys.readouterr()
    assert main(["abi", str(app_dir)]) == 0
    abi: list[dict[str, Any]] = json.loads(capsys.readouterr().out)
    return abi


def entry(abi: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = [e for e in abi if e["type"] == kind and e["name"] == name]
    return found


# ---- rollup new -----------------------------------------------------------------------------


def test_new_writes_the_template_with_the_manifest_rendered(tmp_path: Path) -> None:
    app_dir = new_app(tmp_path, "demo")
    assert sorted(p.name for p in app_dir.iterdir()) == ["app.py", "rollup.toml", "test_app.py"]
    assert (app_dir / "app.py").read_text() == (TEMPLATE / "app.py").read_text()
    manifest = parse_manifest((app_dir / "rollup.toml").read_text())
    assert manifest.name == "demo"
    assert manifest.chain_id == default_chain_id("demo")
    assert manifest.vm == "native"
    assert (app_dir / manifest.code).is_file()


def test_new_takes_a_chain_id_and_fills_an_empty_dir(tmp_path: Path) -> None:
    (tmp_path / "demo").mkdir()
    app_dir = new_app(tmp_path, "demo", "--chain-id", "4242")
    assert parse_manifest((app_dir / "rollup.toml").read_text()).chain_id == 4242


def test_new_refuses_to_overwrite_a_non_empty_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "app.py").write_text("mine")
    assert main(["new", "demo", "--template", "token", "--dir", str(tmp_path)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert (tmp_path / "demo" / "app.py").read_text() == "mine"
    assert sorted(p.name for p in (tmp_path / "demo").iterdir()) == ["app.py"]


@pytest.mark.parametrize("name", ["Token", "-token", "my_app", "a" * 33, "tok en", ""])
def test_new_refuses_a_name_the_manifest_would_reject(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    # After "--", so that a name starting with "-" reaches our check rather than argparse's.
    assert main(["new", "--template", "token", "--dir", str(tmp_path), "--", name]) == 2
    assert "invalid app name" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_new_refuses_an_unknown_template(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["new", "demo", "--template", "nope", "--dir", str(tmp_path)])
    assert exit_info.value.code == 2


# The one hand edit in the examples: the orderbook takes examples/erc20 as its base asset.
EXAMPLE_EDITS = {
    "orderbook": [
        ("token_chain = 0", "token_chain = 930582               # examples/erc20 (its chain id)"),
        (
            'token_app = "token"',
            'token_app = "0x5FbDB2315678afecb367f032d93F642f64180aa3"   '
            "# examples/erc20 (its address)",
        ),
    ],
}


@pytest.mark.parametrize(
    ("example", "template"), [("token", "token"), ("erc20", "evm"), ("orderbook", "orderbook")]
)
def test_each_example_is_its_template_rendered(example: str, template: str) -> None:
    files = render(template, example, default_chain_id(example))
    for old, new in EXAMPLE_EDITS.get(example, []):
        files[Path("rollup.toml")] = files[Path("rollup.toml")].replace(old, new)
    for relative, text in files.items():
        path = EXAMPLE.parent / example / relative
        assert path.read_text() == text, f"examples/{example}/{relative} is stale"


def test_the_generated_app_passes_its_own_tests(tmp_path: Path) -> None:
    app_dir = new_app(tmp_path, "demo")
    env = dict(os.environ, ETH_HASH_BACKEND=os.environ.get("ETH_HASH_BACKEND", "pysha3"))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=app_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=APP_TEST_TIMEOUT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 passed" in done.stdout


# ---- rollup abi -----------------------------------------------------------------------------


def test_abi_describes_the_token_like_an_erc20(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    abi = abi_of(new_app(tmp_path), capsys)
    transfer = entry(abi, "function", "transfer")
    assert transfer["inputs"] == [
        {"name": "to", "type": "address"},
        {"name": "value", "type": "uint256"},
    ]
    assert transfer["outputs"] == [{"name": "", "type": "bool"}]
    assert transfer["stateMutability"] == "nonpayable"
    balance_of = entry(abi, "function", "balanceOf")
    assert balance_of["inputs"] == [{"name": "owner", "type": "address"}]
    assert balance_of["outputs"] == [{"name": "", "type": "uint256"}]
    assert balance_of["stateMutability"] == "view"
    assert entry(abi, "event", "Transfer") == {
        "type": "event",
        "name": "Transfer",
        "inputs": [
            {"name": "from", "type": "address", "indexed": True},
            {"name": "to", "type": "address", "indexed": True},
            {"name": "value", "type": "uint256", "indexed": False},
        ],
        "anonymous": False,
    }
    assert entry(abi, "error", "ERC20InvalidReceiver")["inputs"] == [
        {"name": "receiver", "type": "address"}
    ]


def test_abi_selectors_and_topics_are_the_ethereum_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    abi = abi_of(new_app(tmp_path), capsys)
    transfer = function_abi_to_4byte_selector(entry(abi, "function", "transfer"))  # type: ignore[arg-type]
    assert transfer == bytes.fromhex("a9059cbb")
    topic = event_abi_to_log_topic(entry(abi, "event", "Transfer"))  # type: ignore[arg-type]
    assert topic == keccak(text="Transfer(address,address,uint256)")


def test_abi_of_a_dir_without_an_app_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["abi", str(tmp_path)]) == 1
    assert "rollup.toml is missing" in capsys.readouterr().err


def test_tuple_types_become_tuple_components() -> None:
    assert abi_param("pairs", "(uint256,(address,bool)[])[]") == {
        "name": "pairs",
        "type": "tuple[]",
        "components": [
            {"name": "", "type": "uint256"},
            {
                "name": "",
                "type": "tuple[]",
                "components": [{"name": "", "type": "address"}, {"name": "", "type": "bool"}],
            },
        ],
    }


# ---- devnet commands with nothing running ---------------------------------------------------


def test_status_without_a_devnet_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "--json", "--data-dir", str(tmp_path)]) == 1
    assert "no devnet is running" in capsys.readouterr().err


def test_down_without_a_devnet_is_a_no_op(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["down", "--data-dir", str(tmp_path)]) == 0
    assert "nothing to stop" in capsys.readouterr().out


def test_up_refuses_two_apps_with_the_same_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = new_app(tmp_path / "a", "demo", "--chain-id", "1001")
    second = new_app(tmp_path / "b", "demo", "--chain-id", "1002")
    data_dir = tmp_path / "data"
    assert main(["up", "--data-dir", str(data_dir), str(first), str(second)]) == 1
    assert "same name demo" in capsys.readouterr().err
    assert not data_dir.exists()


def test_up_refuses_two_apps_with_the_same_chain_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = new_app(tmp_path, "one", "--chain-id", "1001")
    second = new_app(tmp_path, "two", "--chain-id", "1001")
    data_dir = tmp_path / "data"
    assert main(["up", "--data-dir", str(data_dir), str(first), str(second)]) == 1
    assert "same chain id 1001" in capsys.readouterr().err
    assert not data_dir.exists()


@pytest.mark.parametrize("detach", [[], ["--detach"]])
def test_up_with_an_external_l1_needs_the_owner_key_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], detach: list[str]
) -> None:
    data_dir, l1 = tmp_path / "data", ["--l1-rpc", "http://127.0.0.1:9"]
    up = ["up", *detach, "--data-dir", str(data_dir), *l1, str(EXAMPLE)]
    assert main(up) == 1
    err = capsys.readouterr().err
    assert "--l1-rpc needs --l1-key-file FILE" in err and err.count("\n") == 1

    assert main([*up, "--l1-key-file", str(tmp_path / "nope.key")]) == 1
    err = capsys.readouterr().err
    assert f"key file {tmp_path / 'nope.key'} does not exist" in err and err.count("\n") == 1

    shared = tmp_path / "shared.key"
    shared.write_text("0x" + "11" * 32 + "\n")
    shared.chmod(0o644)
    assert main([*up, "--l1-key-file", str(shared)]) == 1
    err = capsys.readouterr().err
    assert "is accessible by other users" in err and err.count("\n") == 1
    assert "11" * 32 not in err  # a refused key is not shown either
    assert not data_dir.exists()  # nothing started
