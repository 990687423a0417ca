"""Anvil as the devnet L1: it starts on loopback with our chain id and stops by PID."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.anvil import ANVIL_ENV, AnvilError, AnvilProcess, find_anvil
from services.process import free_port, pid_alive
from services.rpcclient import rpc_call as rpc

FIRST_DEV_ACCOUNT = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
TEN_THOUSAND_ETH = 10_000 * 10**18


@pytest.mark.e2e
def test_anvil_starts_on_loopback_with_dev_accounts_and_stops(tmp_path: Path) -> None:
    anvil = AnvilProcess(log_dir=tmp_path)
    port = free_port()
    anvil.start(port=port, chain_id=424242)
    try:
        assert anvil.rpc_url == f"http://127.0.0.1:{port}"
        assert rpc(anvil.rpc_url, "eth_chainId") == hex(424242)
        balance = rpc(anvil.rpc_url, "eth_getBalance", FIRST_DEV_ACCOUNT, "latest")
        assert isinstance(balance, str)
        assert int(balance, 16) == TEN_THOUSAND_ETH
        pid = anvil.pid
        assert pid_alive(pid)
    finally:
        anvil.stop()
    assert not pid_alive(pid)
    assert not anvil.running()
    anvil.stop()  # a second stop is harmless


@pytest.mark.e2e
def test_context_manager_starts_and_stops(tmp_path: Path) -> None:
    with AnvilProcess(log_dir=tmp_path) as anvil:
        pid = anvil.pid
        assert rpc(anvil.rpc_url, "eth_chainId") == hex(31337)
    assert not pid_alive(pid)


def test_rpc_url_before_start_is_an_error() -> None:
    with pytest.raises(AnvilError, match="not started"):
        _ = AnvilProcess().rpc_url


def test_env_override_must_point_at_an_executable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ANVIL_ENV, str(tmp_path / "no-such-anvil"))
    with pytest.raises(AnvilError, match=ANVIL_ENV):
        find_anvil()
