"""JSON-RPC over HTTP, as a client: the one of the CLI, the devnet, the benchmarks' set-up and
the tests (the benchmarks' timed sends keep their own lean connection, benchmarks/http.py).

    request(method, params, id)        {"jsonrpc": "2.0", "id": id, "method": ..., "params": [...]}
    rpc_call(url, method, *params)     one call on a connection of its own; its result
    RpcClient(url).call(method, ...)   the same over one keep-alive connection
    RpcClient(url).batch([(m, p), ...]) a batch; the answers in the order of the calls
    RpcClient(url).post(body)          any JSON body (or bytes); the decoded answer

Every connection ignores the proxy settings of the environment (`trust_env=False`): the nodes
and Anvil are on loopback, and a proxy must not sit between us and them.

Two errors, by what the caller must do: `RpcUnavailable` when no JSON-RPC answer came (the
connection failed or timed out, an HTTP status without a JSON-RPC body, a body that is not
JSON-RPC): try again later; `RpcCallError` when the node answered with an error object (its
`code`, `message` and `data`): the call itself is wrong.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Self

import httpx

from rollup.errors import Action, RollupError

__all__ = ["RpcCallError", "RpcClient", "RpcUnavailable", "request", "rpc_call"]

TIMEOUT = 10.0
_JSON = {"content-type": "application/json"}


class RpcUnavailable(RollupError):
    """No JSON-RPC answer came from the URL."""

    action = Action.RETRY


class RpcCallError(RollupError):
    """The node answered the call with a JSON-RPC error object."""

    action = Action.FIX_INPUT

    def __init__(self, method: str, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{method}: {message} (code {code})")
        self.method, self.code, self.reason, self.data = method, code, message, data


def request(method: str, params: Sequence[Any] = (), id: Any = 1) -> dict[str, Any]:
    """A JSON-RPC 2.0 request object."""
    return {"jsonrpc": "2.0", "id": id, "method": method, "params": list(params)}


class RpcClient:
    """JSON-RPC to one URL over a keep-alive connection; a context manager that closes it."""

    def __init__(self, url: str, timeout: float = TIMEOUT) -> None:
        self.url = url
        self._http = httpx.Client(trust_env=False, timeout=timeout)

    def call(self, method: str, *params: Any) -> Any:
        """The call's result; `RpcCallError` if the node answered with an error."""
        return _result(method, self.post(request(method, params)))

    def batch(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[dict[str, Any]]:
        """The answer objects of a batch of calls (each a result or an error), in call order."""
        answers = self.post(
            [request(method, params, i) for i, (method, params) in enumerate(calls)]
        )
        if not isinstance(answers, list) or len(answers) != len(calls):
            raise RpcUnavailable(f"{self.url}: not an answer to a batch of {len(calls)}")
        by_id = {a.get("id"): a for a in answers if isinstance(a, dict)}
        if set(by_id) != set(range(len(calls))):
            raise RpcUnavailable(f"{self.url}: a batch answer without every call's id")
        return [by_id[i] for i in range(len(calls))]

    def post(self, body: Any) -> Any:
        """POST a JSON body (or bytes as they are) and decode the JSON answer."""
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        try:
            response = self._http.post(self.url, content=content, headers=_JSON)
        except httpx.HTTPError as exc:
            reason = str(exc) or type(exc).__name__
            raise RpcUnavailable(f"{self.url} does not answer: {reason}") from None
        try:
            return json.loads(response.content)
        except ValueError:
            raise RpcUnavailable(
                f"{self.url} answered HTTP {response.status_code} without JSON"
            ) from None

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def rpc_call(url: str, method: str, *params: Any, timeout: float = TIMEOUT) -> Any:
    """One call on a connection of its own; its result."""
    with RpcClient(url, timeout) as client:
        return client.call(method, *params)


def _result(method: str, answer: Any) -> Any:
    if not isinstance(answer, dict) or ("result" not in answer and "error" not in answer):
        raise RpcUnavailable(f"{method}: not a JSON-RPC answer: {str(answer)[:200]}")
    if "error" in answer:
        error = answer["error"] if isinstance(answer["error"], dict) else {}
        code = error.get("code")
        message = str(error.get("message", answer["error"]))
        raise RpcCallError(method, code if isinstance(code, int) else 0, message, error.get("data"))
    return answer["result"]
