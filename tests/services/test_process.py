"""ManagedProcess, the one way a process is started and stopped, and its loopback probes."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from rollup.errors import ProcessError
from services.process import (
    ManagedProcess,
    accepts_tcp,
    answers_http,
    answers_rpc,
    free_port,
    pid_alive,
    port_is_free,
    stop_all,
    terminate_pids,
)
from services.waiting import wait_until


class StartError(ProcessError):
    pass


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def marker_probe(path: Path) -> ManagedProcess:
    """A child that writes `path` once it is 'ready', then sleeps."""
    code = f"import pathlib, time; pathlib.Path({str(path)!r}).write_text('up'); time.sleep(60)"
    return ManagedProcess(
        "sleeper", python(code), path.with_suffix(".log"), ready=path.exists, error=StartError
    )


def test_start_waits_for_the_probe_and_stop_ends_the_process(tmp_path: Path) -> None:
    process = marker_probe(tmp_path / "ready")
    process.start(timeout=20)
    pid = process.pid
    assert pid is not None and pid_alive(pid) and process.running()
    assert process.exited() is None
    process.stop()
    assert not pid_alive(pid) and not process.running()
    process.stop()  # idempotent


def test_the_child_gets_its_own_session_closed_stdin_and_our_environment(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    code = (
        "import json, os, sys; json.dump({'sid': os.getsid(0), 'stdin': sys.stdin.read(), "
        "'extra': os.environ.get('EXTRA'), 'unbuffered': os.environ.get('PYTHONUNBUFFERED')}"
        f", open({str(out)!r}, 'w'))"
    )
    process = ManagedProcess("reporter", python(code), tmp_path / "log", env={"EXTRA": "yes"})
    with process:
        assert _wait_for_exit(process) == 0
    seen = json.loads(out.read_text())
    assert seen["sid"] == process.pid != os.getsid(0)
    assert seen["stdin"] == ""
    assert seen["extra"] == "yes" and seen["unbuffered"] == "1"


def test_an_exit_before_ready_is_one_line_ending_with_the_log(tmp_path: Path) -> None:
    process = ManagedProcess(
        "crasher",
        python("print('start'); print('boom'); exit(3)"),
        tmp_path / "crash.log",
        ready=lambda: False,
        error=StartError,
    )
    with pytest.raises(StartError, match=r"crasher exited with code 3 before it was ready") as e:
        process.start(timeout=20)
    assert str(e.value).endswith(f"its log ({tmp_path / 'crash.log'}) ends: boom")
    assert "\n" not in str(e.value)


def test_not_ready_in_time_is_an_error_and_the_process_is_stopped(tmp_path: Path) -> None:
    process = ManagedProcess(
        "slow",
        python("import time; time.sleep(60)"),
        tmp_path / "log",
        ready=lambda: False,
        error=StartError,
    )
    with pytest.raises(StartError, match=r"slow was not ready within 0.3 s"):
        process.start(timeout=0.3)
    assert not process.running()


def test_an_interruption_stops_the_start(tmp_path: Path) -> None:
    process = ManagedProcess(
        "slow", python("import time; time.sleep(60)"), tmp_path / "log", ready=lambda: False
    )
    with pytest.raises(ProcessError, match="interrupted while starting slow"):
        process.start(timeout=20, interrupted=lambda: True)
    assert not process.running()


def test_sigterm_then_sigkill(tmp_path: Path) -> None:
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    stubborn = ManagedProcess("stubborn", python(code), tmp_path / "log", stop_timeout=0.5)
    stubborn.spawn()
    time.sleep(0.5)  # let it install its handler
    started = time.monotonic()
    stubborn.stop()
    assert stubborn.exited() == -9
    assert time.monotonic() - started < 5


def test_kill_and_start_again_on_the_same_log(tmp_path: Path) -> None:
    process = marker_probe(tmp_path / "ready")
    process.start(timeout=20)
    first = process.pid
    process.kill()
    assert process.exited() == -9
    (tmp_path / "ready").unlink()
    with process:  # starts it again: not running
        assert process.pid != first and process.running()
    assert not process.running()


def test_stop_all_and_terminate_pids(tmp_path: Path) -> None:
    sleepers = [
        ManagedProcess(f"s{i}", python("import time; time.sleep(60)"), tmp_path / f"{i}")
        for i in range(3)
    ]
    for sleeper in sleepers:
        sleeper.spawn()
    stop_all(sleepers[:2], timeout=5)
    assert [s.running() for s in sleepers] == [False, False, True]
    pid = sleepers[2].pid
    assert pid is not None
    terminate_pids([pid], timeout=5)
    assert _wait_for_exit(sleepers[2]) is not None
    assert not pid_alive(pid)
    sleepers[2].stop()  # closes our handle on its log


# ---- probes and ports -------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self._answer({"jsonrpc": "2.0", "id": body["id"], "result": "0x2a"})

    def do_GET(self) -> None:  # noqa: N802
        self._answer({"ok": True})

    def _answer(self, answer: object) -> None:
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_probes_on_loopback_ignore_proxy_settings(
    server: ThreadingHTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    port = server.server_address[1]
    url = f"http://127.0.0.1:{port}"
    assert answers_rpc(url)() and answers_rpc(url, 42)() and not answers_rpc(url, 43)()
    assert answers_http(f"{url}/health")()
    assert accepts_tcp(port)()
    assert not port_is_free(port)


def test_probes_say_no_while_nothing_listens() -> None:
    port = free_port()
    assert port_is_free(port)
    assert not answers_rpc(f"http://127.0.0.1:{port}")()
    assert not answers_http(f"http://127.0.0.1:{port}/health")()
    assert not accepts_tcp(port)()


def _wait_for_exit(process: ManagedProcess) -> int | None:
    wait_until(lambda: process.exited() is not None, 20, f"{process.name} to exit")
    return process.exited()
