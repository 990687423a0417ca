"""The same sequencer on PostgreSQL by URL: a real server on loopback, started for this test."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from rollup.types import Address
from sequencer.harness import LocalChain
from services.anvil import free_port
from tests.support import wait_for
from vm.state import get_account

pytestmark = pytest.mark.e2e


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _as_postgres(cmd: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root; run them as the `postgres` user then."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    bin_dir = _pg_bin()
    if bin_dir is None:
        pytest.fail("PostgreSQL server binaries are missing: run scripts/setup.sh (apt postgresql)")
    # not under pytest's tmp dir: its parents are private to root, and postgres must reach it
    root = Path(tempfile.mkdtemp(prefix="rollup-pg-"))
    data = root / "data"
    data.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(data, "postgres")
    initdb = [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"]
    subprocess.run(_as_postgres(initdb), check=True, capture_output=True)
    port = free_port()
    server = subprocess.Popen(
        _as_postgres(
            [
                str(bin_dir / "postgres"),
                "-D",
                str(data),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-k",
                str(root),
                "-c",
                "fsync=off",
            ]
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        ready = [str(bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)]

        def accepting() -> bool:
            assert server.poll() is None, "PostgreSQL exited"
            return subprocess.run(ready, capture_output=True).returncode == 0

        wait_for(accepting, "PostgreSQL to accept connections", 30)
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        server.terminate()
        server.wait(20)
        shutil.rmtree(root, ignore_errors=True)


def test_chain_on_postgres_survives_a_restart(token_app: Path, postgres_url: str) -> None:
    recipient = Address(b"\x42" * 20)
    with LocalChain.from_dir(token_app, postgres_url) as chain:
        chain.transfer(chain.accounts[0], recipient, 5)
        receipt = chain.transact(chain.accounts[0], "transfer", chain.accounts[1], 10**18)
        assert receipt.status == 1
        chain.node.checkpoint().result()
        chain.transfer(chain.accounts[0], recipient, 6)
        head = chain.node.committed
    with LocalChain.from_dir(token_app, postgres_url) as chain:
        assert chain.node.committed == head
        assert get_account(chain.node.state, recipient) == (0, 11)
        assert chain.call("balanceOf", chain.accounts[1]) == 10**18
