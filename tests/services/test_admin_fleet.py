"""`DevnetFleet` over a recorded devnet whose node is down: shown unreachable (never a 5xx);
the operator's requests to the supervisor (services/devnet/control.py); a log's last error."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.admin.app import create_app
from services.admin.errors import Conflict, NotFound
from services.admin.fleet import DevnetFleet, last_error_line
from services.admin.tokens import ensure_tokens
from services.devnet.control import Wanted, clear_wanted, read_wanted, write_wanted
from services.process import free_port


def write_devnet(data_dir: Path, supervisor_pid: int, log: Path) -> dict[str, Any]:
    port = free_port()  # nothing listens there
    app = {
        "name": "tok",
        "chain_id": 901001,
        "vm": "native",
        "address": "0x" + "11" * 20,
        "app_dir": str(data_dir / "app"),
        "rpc_url": f"http://127.0.0.1:{port}",
        "port": port,
        "pid": 1,
        "data_dir": str(data_dir / "apps" / "tok"),
        "log": str(log),
        "restarts": 2,
        "stopped": False,
        "verifier": None,
    }
    state = {
        "version": 1,
        "supervisor_pid": supervisor_pid,
        "data_dir": str(data_dir),
        "logs_dir": str(data_dir / "logs"),
        "l1": {"rpc_url": "http://127.0.0.1:1", "pid": None, "log": None},
        "apps": [app],
        "da": None,
        "bus": {},
        "admin": None,
    }
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "devnet.json").write_text(json.dumps(state))
    return state


def test_a_node_that_is_down_is_shown_unreachable(tmp_path: Path) -> None:
    log = tmp_path / "tok.log"
    log.write_text(
        "2026-01-01 00:00:00,000 INFO services.node: started\n"
        "2026-01-01 00:00:01,000 ERROR services.da_node: post failed: L1 down\n"
        "2026-01-01 00:00:02,000 WARNING services.node: slow\n"
    )
    write_devnet(tmp_path, os.getpid(), log)
    tokens = ensure_tokens(tmp_path)
    client = TestClient(
        create_app(DevnetFleet(tmp_path, tokens.admin), tokens), base_url="http://127.0.0.1"
    )
    response = client.get("/v1/apps", headers={"Authorization": f"Bearer {tokens.read}"})
    assert response.status_code == 200, response.text
    (app,) = response.json()["items"]
    assert app["state"] == "unreachable" and app["restarts"] == 2
    assert app["heads"] == {"unsafe": None, "safe": None, "finalized": None}
    assert app["mempool"] is None and app["tx_per_second"] is None
    assert app["last_error"].endswith("ERROR services.da_node: post failed: L1 down")
    pause = client.post(
        "/v1/apps/tok/sequencer/pause", headers={"Authorization": f"Bearer {tokens.admin}"}
    )
    assert pause.status_code == 503 and "did not do it" in pause.json()["detail"]


def test_no_devnet_no_apps_and_not_ready(tmp_path: Path) -> None:
    fleet = DevnetFleet(tmp_path, "t" * 32)
    assert fleet.names() == [] and not fleet.ready()
    with pytest.raises(NotFound):
        fleet.view(["tok"])


def test_stop_without_a_supervisor_is_a_conflict(tmp_path: Path) -> None:
    dead = 2**22 + 12345  # above the usual pid_max
    write_devnet(tmp_path, dead, tmp_path / "none.log")
    with pytest.raises(Conflict, match="no supervisor runs this devnet"):
        DevnetFleet(tmp_path, "t" * 32).stop("tok")
    assert read_wanted(tmp_path, "tok") == Wanted()  # nothing was asked


def test_control_files_say_what_the_operator_wants(tmp_path: Path) -> None:
    assert read_wanted(tmp_path, "tok") == Wanted(run=True, restart=0)
    write_wanted(tmp_path, "tok", Wanted(run=False, restart=3))
    assert read_wanted(tmp_path, "tok") == Wanted(run=False, restart=3)
    (tmp_path / "control" / "bad.json").write_text("{")
    assert read_wanted(tmp_path, "bad") == Wanted()
    clear_wanted(tmp_path)
    assert read_wanted(tmp_path, "tok") == Wanted()


def test_the_last_error_is_found_in_a_log_tail(tmp_path: Path) -> None:
    log = tmp_path / "big.log"
    log.write_text("x ERROR old\n" + "y INFO filler line\n" * 10_000)
    assert last_error_line(log) is None  # beyond the tail read
    assert last_error_line(tmp_path / "missing.log") is None
    with log.open("a") as out:
        out.write('{"time": "t", "level": "ERROR", "message": "json"}\n')
    assert last_error_line(log) == '{"time": "t", "level": "ERROR", "message": "json"}'
