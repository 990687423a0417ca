"""The one JSON-RPC client: results, error objects, batches, and no answer at all."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from services.process import free_port
from services.rpcclient import RpcCallError, RpcClient, RpcUnavailable, request, rpc_call


def answer(call: dict[str, Any]) -> dict[str, Any]:
    if call["method"] == "echo":
        return {"jsonrpc": "2.0", "id": call["id"], "result": call["params"]}
    return {
        "jsonrpc": "2.0",
        "id": call["id"],
        "error": {"code": -32601, "message": "no such method", "data": "0x01"},
    }


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path == "/text":
            self._send(b"not json", 502)
        elif isinstance(body, list):
            self._send(json.dumps([answer(c) for c in reversed(body)]).encode())
        else:
            self._send(json.dumps(answer(body)).encode())

    def _send(self, data: bytes, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def url() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_request_is_the_json_rpc_object() -> None:
    assert request("eth_chainId") == {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "eth_chainId",
        "params": [],
    }
    assert request("m", ("a", 1), id=7)["params"] == ["a", 1]


def test_a_call_returns_its_result(url: str) -> None:
    assert rpc_call(url, "echo", "0x1", [2**80]) == ["0x1", [2**80]]
    with RpcClient(url) as client:
        assert client.call("echo") == []


def test_an_error_object_is_an_rpc_call_error_with_its_fields(url: str) -> None:
    with pytest.raises(RpcCallError) as caught:
        rpc_call(url, "nope", 1)
    error = caught.value
    assert (error.method, error.code, error.reason, error.data) == (
        "nope",
        -32601,
        "no such method",
        "0x01",
    )
    assert str(error) == "nope: no such method (code -32601)"


def test_a_batch_comes_back_in_call_order(url: str) -> None:
    with RpcClient(url) as client:
        answers = client.batch([("echo", ["a"]), ("nope", []), ("echo", ["c"])])
    assert [a.get("result") for a in answers] == [["a"], None, ["c"]]
    assert answers[1]["error"]["code"] == -32601


def test_no_answer_is_rpc_unavailable(url: str) -> None:
    with pytest.raises(RpcUnavailable, match="does not answer"):
        rpc_call(f"http://127.0.0.1:{free_port()}", "echo", timeout=2.0)
    with pytest.raises(RpcUnavailable, match="HTTP 502 without JSON"):
        rpc_call(f"{url}/text", "echo")
