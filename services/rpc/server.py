"""The network face of one app's node: JSON-RPC 2.0 over HTTP POST and over WebSocket (same
port and path), single requests and batches; eth_subscribe over WebSocket only.

Errors always travel with HTTP 200 (wallets treat 4xx/5xx as a dead node) and EIP-1474 codes.
Bounds: body size, batch length, and the wait of eth_sendRawTransaction for its block.
eth_sendRawTransaction answers once the block holding the transaction is durable, so the hash
it returns is a soft confirmation; a transaction with a future nonce is answered at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from rollup.errors import (
    ExecutionReverted,
    InvalidParams,
    InvalidRequest,
    MethodNotFound,
    ParseError,
    RollupError,
    rpc_code,
)
from rollup.types import Receipt, Transaction
from sequencer.admission import decode_chunk
from sequencer.node import Sequencer
from services.producer import BlockProducer
from services.rpc import codec
from services.rpc import messages as _messages  # noqa: F401 - registers rollup_getBlockMessages
from services.rpc.filters import FilterRegistry, Subscriptions
from services.rpc.methods import METHODS, Method, anything, log_filter

__all__ = ["RpcLimits", "RpcServer", "create_app"]

log = logging.getLogger("rpc")

_JSON = {"content-type": "application/json"}


@dataclass(frozen=True, slots=True)
class RpcLimits:
    max_body_bytes: int = 8 * 1024 * 1024
    max_batch: int = 2_000
    send_wait_seconds: float = 10.0
    decode_chunk: int = 128


def error_object(error: BaseException) -> dict[str, Any]:
    if isinstance(error, RollupError):
        obj: dict[str, Any] = {"code": rpc_code(error), "message": error.message}
        if isinstance(error, ExecutionReverted):
            obj["data"] = codec.data(error.data)  # "0x" for a bare revert, as geth sends
        return obj
    log.exception("internal error", exc_info=error)
    return {"code": -32603, "message": f"internal error: {type(error).__name__}"}


def _response(
    req_id: Any, result: Any = None, error: BaseException | None = None
) -> dict[str, Any]:
    if error is not None:
        return {"jsonrpc": "2.0", "id": req_id, "error": error_object(error)}
    return {"jsonrpc": "2.0", "id": req_id, "result": result}


class RpcServer:
    def __init__(self, node: Sequencer, producer: BlockProducer, limits: RpcLimits | None = None,
                 admission_gate: Callable[[], None] | None = None):  # fmt: skip
        """`admission_gate` raises to refuse new transactions (the DA backlog's back-pressure)."""
        self.node, self.producer = node, producer
        self.limits = limits or RpcLimits()
        self.admission_gate = admission_gate
        self.filters = FilterRegistry(node)
        self._filter_methods = _filter_methods(self.filters)

    async def handle_body(self, body: bytes, session: Subscriptions | None = None) -> bytes | None:
        """One HTTP body in, one HTTP body out (None when every request was a notification)."""
        if len(body) > self.limits.max_body_bytes:
            return orjson.dumps(_response(None, error=InvalidRequest("request body too large")))
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            return orjson.dumps(_response(None, error=ParseError("parse error")))
        if isinstance(payload, list):
            if not payload:
                return orjson.dumps(_response(None, error=InvalidRequest("empty batch")))
            if len(payload) > self.limits.max_batch:
                return orjson.dumps(_response(None, error=InvalidRequest("batch too large")))
            responses = await self.handle_batch(payload, session)
            return orjson.dumps(responses) if responses else None
        responses = await self.handle_batch([payload], session)
        return orjson.dumps(responses[0]) if responses else None

    async def handle_batch(
        self, requests: list[Any], session: Subscriptions | None = None
    ) -> list[dict[str, Any]]:
        decoded = await self._decode_sends(requests)
        waits: list[tuple[int, asyncio.Future[Any]]] = []
        responses: list[dict[str, Any] | None] = []
        for position, request in enumerate(requests):
            if not _valid_request(request):
                responses.append(_response(None, error=InvalidRequest("invalid request")))
                continue
            req_id = request.get("id")
            try:
                if request["method"] == "eth_sendRawTransaction":
                    result, included = self._send(decoded[position])
                    if included is not None:
                        waits.append((len(responses), included))
                else:
                    result = self._call(request["method"], request.get("params"), session)
                responses.append(_response(req_id, result))
            except Exception as exc:
                responses.append(_response(req_id, error=exc))
            if "id" not in request:
                responses[-1] = None  # a notification: executed, not answered
        if waits:
            self.producer.wake()
            await self._await_sends(responses, waits)
        return [r for r in responses if r is not None]

    async def _await_sends(
        self, responses: list[dict[str, Any] | None], waits: list[tuple[int, asyncio.Future[Any]]]
    ) -> None:
        """Hold the answers until their blocks are written; a dropped transaction's answer
        becomes its error. Past the wait bound the hash is answered anyway."""
        await asyncio.wait([f for _, f in waits], timeout=self.limits.send_wait_seconds)
        for index, future in waits:
            response = responses[index]
            if response is not None and future.done() and isinstance(future.result(), RollupError):
                responses[index] = _response(response["id"], error=future.result())

    def _call(self, method: Any, params: Any, session: Subscriptions | None = None) -> Any:
        if params is None:
            params = []
        if not isinstance(params, list):
            raise InvalidParams("invalid argument: params must be an array")
        if method in ("eth_subscribe", "eth_unsubscribe"):
            if session is None:
                error = MethodNotFound(method)
                error.message = "notifications not supported"  # geth's answer over HTTP
                raise error
            if method == "eth_subscribe":
                return session.subscribe(params)
            return session.unsubscribe(params)
        local = self._filter_methods.get(method)
        if local is not None:
            return self._invoke(local, params, None)
        spec = METHODS.get(method)
        if spec is None:
            raise MethodNotFound(str(method))
        return self._invoke(spec, params, self.node)

    @staticmethod
    def _invoke(spec: Method, params: list[Any], target: Any) -> Any:
        if not spec.required <= len(params) <= len(spec.parsers):
            raise InvalidParams(
                f"missing value for required argument {len(params)}" if len(params) < spec.required
                else f"too many arguments, want at most {len(spec.parsers)}"
            )  # fmt: skip
        args = [parse(value) for parse, value in zip(spec.parsers, params, strict=False)]
        return spec.handler(*args) if target is None else spec.handler(target, *args)

    async def _decode_sends(self, requests: list[Any]) -> dict[int, Any]:
        """Decode and recover every eth_sendRawTransaction of the batch, in parallel threads."""
        raws: list[tuple[int, bytes]] = []
        decoded: dict[int, Any] = {}
        for position, request in enumerate(requests):
            if not (_valid_request(request) and request["method"] == "eth_sendRawTransaction"):
                continue
            try:
                raws.append((position, _raw_param(request.get("params"))))
            except RollupError as exc:
                decoded[position] = exc
        if not raws:
            return decoded
        size = self.limits.decode_chunk
        chunks = [raws[i : i + size] for i in range(0, len(raws), size)]
        loop = asyncio.get_running_loop()
        chain_id = self.node.chain_id
        pool = self.node.decoder
        jobs = [
            loop.run_in_executor(pool, decode_chunk, [raw for _, raw in chunk], chain_id)
            for chunk in chunks
        ]
        results = await asyncio.gather(*jobs)
        for chunk, result in zip(chunks, results, strict=True):
            for (position, _raw), item in zip(chunk, result, strict=True):
                decoded[position] = item
        return decoded

    def _send(
        self, decoded: Transaction | RollupError
    ) -> tuple[str, asyncio.Future[Receipt | RollupError] | None]:
        """Admit; return the hash and, if it can go in the next block, a future of its receipt."""
        if isinstance(decoded, RollupError):
            raise decoded
        if self.admission_gate is not None:
            self.admission_gate()
        ready = self.node.admit(decoded)
        tx_hash = codec.data(decoded.hash)
        if not ready:
            return tx_hash, None
        future: asyncio.Future[Receipt | RollupError] = asyncio.get_running_loop().create_future()

        def done(result: Receipt | RollupError) -> None:
            if not future.done():
                future.set_result(result)

        self.node.watch(decoded.hash, done)
        return tx_hash, future


def _filter_methods(filters: FilterRegistry) -> dict[str, Method]:
    return {
        "eth_newFilter": Method(filters.new_filter, (log_filter,), 1),
        "eth_newBlockFilter": Method(filters.new_block_filter, (), 0),
        "eth_newPendingTransactionFilter": Method(filters.new_pending_filter, (), 0),
        "eth_getFilterChanges": Method(filters.changes, (anything,), 1),
        "eth_getFilterLogs": Method(filters.logs, (anything,), 1),
        "eth_uninstallFilter": Method(filters.uninstall, (anything,), 1),
    }


def _valid_request(request: Any) -> bool:
    return (
        isinstance(request, dict)
        and request.get("jsonrpc") == "2.0"
        and isinstance(request.get("method"), str)
        and isinstance(request.get("id", 0), (str, int, type(None)))
    )


def _raw_param(params: Any) -> bytes:
    if not isinstance(params, list) or len(params) != 1:
        raise InvalidParams("eth_sendRawTransaction takes exactly one parameter")
    raw = codec.parse_data(params[0], "transaction")
    if not raw:
        raise InvalidParams("invalid argument 0: empty transaction")
    return raw


def create_app(server: RpcServer) -> Starlette:
    async def rpc_endpoint(request: Request) -> Response:
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > server.limits.max_body_bytes:
            body = orjson.dumps(_response(None, error=InvalidRequest("request body too large")))
            return Response(body, headers=_JSON)
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > server.limits.max_body_bytes:
                body = orjson.dumps(_response(None, error=InvalidRequest("request body too large")))
                return Response(body, headers=_JSON)
            chunks.append(chunk)
        out = await server.handle_body(b"".join(chunks))
        return Response(out or b"", headers=_JSON)

    async def websocket_endpoint(socket: WebSocket) -> None:
        await socket.accept()
        session = Subscriptions(server.node)
        sender = asyncio.create_task(_pump(socket, session))
        try:
            while True:
                message = await socket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                body = message.get("bytes") or (message.get("text") or "").encode()
                out = await server.handle_body(body, session)
                if out is not None:
                    await session.queue.put(orjson.loads(out))
        except WebSocketDisconnect:
            pass
        finally:
            session.close()
            sender.cancel()

    async def health(_request: Request) -> Response:
        node = server.node
        body = {"chain_id": node.chain_id, "head": node.committed.number, "pool": len(node.mempool)}
        return Response(orjson.dumps(body), headers=_JSON)

    return Starlette(
        routes=[
            Route("/", rpc_endpoint, methods=["POST"]),
            WebSocketRoute("/", websocket_endpoint),
            Route("/health", health, methods=["GET"]),
        ],
        middleware=[
            Middleware(
                CORSMiddleware,
                allow_origins=["*"],
                allow_methods=["POST", "GET"],
                allow_headers=["*"],
            )
        ],  # fmt: skip
    )


async def _pump(socket: WebSocket, session: Subscriptions) -> None:
    """Send answers and notifications in order; close a connection that fell too far behind."""
    while True:
        if session.overflowed:
            await socket.close(code=1008, reason="subscription queue full: reading too slowly")
            return
        message = await session.queue.get()
        if message is None:
            return
        await socket.send_text(orjson.dumps(message).decode())
