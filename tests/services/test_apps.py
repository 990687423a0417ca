"""Loading an EVM app directory: compile errors, bad manifests and stale or damaged builds give
clear errors or a fresh build, never a half-started chain."""

from __future__ import annotations

from pathlib import Path

import pytest

from rollup.errors import ManifestError
from sequencer.node import Sequencer
from services.apps import load_app
from tests.conftest import render_template
from vm.evm.artifact import Artifact


@pytest.fixture
def evm_app(tmp_path: Path) -> Path:
    return render_template(tmp_path / "app", "evm", "apps", 4747)


def test_a_compile_error_names_the_file_and_solc_message(evm_app: Path) -> None:
    token = evm_app / "contracts" / "Token.sol"
    token.write_text(token.read_text().replace("uint8 public constant", "uint8 publik constant"))
    with pytest.raises(ManifestError, match=r"Token\.sol does not compile:\n.*ParserError"):
        load_app(evm_app)


def test_an_unknown_contract_is_named(evm_app: Path) -> None:
    manifest = evm_app / "rollup.toml"
    manifest.write_text(manifest.read_text().replace('class = "Token"', 'class = "Tokn"'))
    with pytest.raises(ManifestError, match="no contract 'Tokn'"):
        load_app(evm_app)


def test_constructor_arguments_must_match_by_name(evm_app: Path, tmp_path: Path) -> None:
    manifest = evm_app / "rollup.toml"
    manifest.write_text(manifest.read_text().replace("symbol_ =", "symbol ="))
    bundle = load_app(evm_app)
    with pytest.raises(ManifestError, match=r"missing \['symbol_'\], unknown \['symbol'\]"):
        Sequencer(bundle.manifest, bundle.code, f"sqlite:///{tmp_path / 'chain.db'}")
    assert not list(tmp_path.glob("chain.db*")) or _no_blocks(tmp_path / "chain.db")


def _no_blocks(db: Path) -> bool:
    import sqlite3

    with sqlite3.connect(db) as conn:
        tables = {r[0] for r in conn.execute("select name from sqlite_master where type='table'")}
        if "blocks" not in tables:
            return True
        count: int = conn.execute("select count(*) from blocks").fetchone()[0]
        return count == 0


def test_a_stale_or_damaged_build_is_rebuilt(evm_app: Path) -> None:
    first = load_app(evm_app).code
    assert isinstance(first, Artifact)
    built = evm_app / "build" / "Token.json"
    built.write_text("{ damaged")
    assert load_app(evm_app).code == first
    token = evm_app / "contracts" / "Token.sol"
    token.write_text(token.read_text() + "\n// a change\n")
    changed = load_app(evm_app).code
    assert isinstance(changed, Artifact) and changed.source_hash != first.source_hash
