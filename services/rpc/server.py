"""The network face of one app's node: JSON-RPC 2.0 over HTTP POST and over WebSocket (same
port and path), single requests and batches; eth_subscribe over WebSocket only.

Errors always travel with HTTP 200 (wallets treat 4xx/5xx as a dead node) and EIP-1474 codes.
Bounds: body size, batch length, and the wait of eth_sendRawTransaction for its block.
eth_sendRawTransaction answers once the block holding the transaction is durable, so the hash
it returns is a soft confirmation; a transaction with a future nonce is answered at once.

GET /metrics serves the node's Prometheus text (services/metrics.py) behind the same Host
check as everything else; a request from a page of an untrusted origin is refused it (403), as
private methods are, and the text is rendered at most twice a second however often it is asked.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from rollup.errors import (
    ExecutionReverted,
    InvalidParams,
    InvalidRequest,
    LimitExceeded,
    MethodNotFound,
    ParseError,
    RollupError,
    rpc_code,
)
from rollup.transactions import decode_transaction
from rollup.types import Receipt, Transaction
from sequencer.admission import decode_chunk
from sequencer.node import Sequencer
from sequencer.simulate import Budget, NeedsIsolation
from services.metrics import CONTENT_TYPE, OTHER, Metrics, RpcCollector, RpcStats, node_metrics
from services.producer import BlockProducer
from services.rpc import codec, wallet
from services.rpc.filters import FilterRegistry, LogQuery, SubscriptionHub, Subscriptions
from services.rpc.isolation import ForwardedError, IsolationLimits, Isolator, outcomes, unwrap
from services.rpc.logs import filter_logs
from services.rpc.methods import METHODS
from services.rpc.params import anything, log_filter
from services.rpc.registry import Method, method

if TYPE_CHECKING:
    from services.settings import RpcSection

__all__ = [
    "RpcLimits",
    "RpcAccess",
    "RpcServer",
    "NodeLoop",
    "create_app",
    "rpc_settings",
]

log = logging.getLogger(__name__)

_JSON = {"content-type": "application/json"}


# Methods this module answers itself, beside the tables of services/rpc/methods.py.
SERVED_HERE = (
    "eth_sendRawTransaction",
    "eth_sendTransaction",
    "eth_subscribe",
    "eth_unsubscribe",
)

DEFAULT_GAS_CAP = 50_000_000  # geth's RPCGasCap: the most gas one simulation run may use


@dataclass(frozen=True, slots=True)
class RpcLimits:
    max_body_bytes: int = 5 * 1024 * 1024  # geth's limit
    max_batch: int = 2_000
    send_wait_seconds: float = 10.0
    decode_chunk: int = 128
    gas_cap: int = DEFAULT_GAS_CAP
    # Gas one body (a request or a batch) may spend on simulations on the event loop; more
    # goes to a forked process. None: 300k on a native chain, 3M on an EVM chain (about the
    # same few milliseconds of work: a native loop step is ~50x slower per gas than revm's).
    inline_gas: int | None = None
    isolation: IsolationLimits = IsolationLimits()
    max_connections: int = 1_024  # HTTP and WebSocket connections at once (then HTTP 503)
    max_ws_connections: int = 256
    ws_max_queue: int = 10_000  # answers and notifications waiting for a slow reader
    yield_every: int = 64  # requests of a batch between two turns given to block production


@dataclass(frozen=True, slots=True)
class RpcAccess:
    """Who may talk to the node from a browser.

    `cors_origins`: origins whose pages may read answers (CORS); "*" allows any, as Anvil does,
    so a dapp page can call public methods. `trusted_origins`: origins allowed to call private
    methods (`Method.private`: node-held keys, node changes); a request that carries any other
    Origin header is refused them, whatever its content type, so a web page cannot use them
    even through a "simple" cross-origin POST or a WebSocket. `hosts`: Host headers accepted,
    which defeats DNS rebinding (geth's --http.vhosts); "*" accepts any.
    """

    cors_origins: tuple[str, ...] = ("*",)
    trusted_origins: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ("localhost", "127.0.0.1", "[::1]")


def rpc_settings(rpc: RpcSection, host: str) -> tuple[RpcLimits, RpcAccess]:
    """The limits and access of [rpc] (services/settings.py) for a node bound to `host`."""
    hosts = rpc.hosts
    if host not in ("127.0.0.1", "localhost", "::1", "0.0.0.0") and "*" not in hosts:
        hosts += (host,)  # the address the node was told to bind is its own name too
    limits = RpcLimits(gas_cap=max(rpc.gas_cap, 21_000))
    return limits, RpcAccess(rpc.cors_origins, rpc.trusted_origins, hosts)


def error_object(error: BaseException) -> dict[str, Any]:
    if isinstance(error, ForwardedError):
        forwarded: dict[str, Any] = {"code": error.code, "message": error.message}
        if error.data is not None:
            forwarded["data"] = error.data
        return forwarded
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
    def __init__(
        self,
        node: Sequencer,
        producer: BlockProducer,
        limits: RpcLimits | None = None,
        admission_gate: Callable[[], None] | None = None,
        access: RpcAccess | None = None,
        metrics: Metrics | None = None,
    ):
        """`admission_gate` raises to refuse new transactions (the DA backlog's back-pressure);
        `metrics`: the node's registry (a new one with the sequencer's series if None), to
        which the server adds its own."""
        self.node, self.producer = node, producer
        self.limits = limits or RpcLimits()
        self.access = access or RpcAccess()
        self.admission_gate = admission_gate
        self.filters = FilterRegistry(node)
        self.hub = SubscriptionHub(node, self.limits.max_ws_connections)
        self.isolator = Isolator(self.limits.isolation)
        self._scans = asyncio.Semaphore(1)  # "thread" methods: one block scan at a time
        self._filter_methods = _filter_methods(self.filters)
        served = {*METHODS, *self._filter_methods, *SERVED_HERE}
        self.stats = RpcStats(served)
        self.metrics = metrics or node_metrics(node, producer)
        self.metrics.add(RpcCollector(self.metrics.app, self.stats))
        default_inline = 3_000_000 if node.evm else 300_000
        self.inline_gas = (
            self.limits.inline_gas if self.limits.inline_gas is not None else default_inline
        )

    async def handle_body(
        self,
        body: bytes,
        session: Subscriptions | None = None,
        origin: str | None = None,
        client: str = "",
    ) -> bytes | None:
        """One HTTP body in, one HTTP body out (None when every request was a notification).
        `origin`: the request's Origin header, if any (private methods check it); `client`:
        who sent it (the remote host, or a WebSocket connection), for per-client bounds."""
        if len(body) > self.limits.max_body_bytes:
            return orjson.dumps(_response(None, error=InvalidRequest("request body too large")))
        await self.producer.turn()  # a due block goes before parsing, too
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            return orjson.dumps(_response(None, error=ParseError("parse error")))
        if isinstance(payload, list):
            if not payload:
                return orjson.dumps(_response(None, error=InvalidRequest("empty batch")))
            if len(payload) > self.limits.max_batch:
                return orjson.dumps(_response(None, error=InvalidRequest("batch too large")))
            responses = await self.handle_batch(payload, session, origin, client)
            return orjson.dumps(responses) if responses else None
        responses = await self.handle_batch([payload], session, origin, client)
        return orjson.dumps(responses[0]) if responses else None

    async def handle_batch(
        self,
        requests: list[Any],
        session: Subscriptions | None = None,
        origin: str | None = None,
        client: str = "",
    ) -> list[dict[str, Any]]:
        started = time.perf_counter()
        await self.producer.turn()  # a due block goes first
        decoded = await self._decode_sends(requests)
        served = self.stats.methods
        labels: list[str] = []  # each request's method label, for the metrics
        call = _Call(self, session, origin, client, Budget(self.inline_gas))
        waits: list[tuple[int, asyncio.Future[Any]]] = []
        later: list[tuple[int, asyncio.Task[Any]]] = []
        grouped: list[tuple[int, Callable[[], Any]]] = []
        responses: list[dict[str, Any] | None] = []
        for position, request in enumerate(requests):
            if position and position % self.limits.yield_every == 0:
                await asyncio.sleep(0)  # let others have a turn ...
                await self.producer.turn()  # ... and a due block go first
            if not _valid_request(request):
                labels.append(OTHER)
                responses.append(_response(None, error=InvalidRequest("invalid request")))
                continue
            req_id, name = request.get("id"), request["method"]
            labels.append(name if name in served else OTHER)
            try:
                if name in ("eth_sendRawTransaction", "eth_sendTransaction"):
                    tx = decoded[position] if name == "eth_sendRawTransaction" else None
                    result, included = self._send(tx or call.signed(request.get("params")), started)
                    if included is not None:
                        waits.append((len(responses), included))
                else:
                    result = call(name, request.get("params"))
                responses.append(_response(req_id, result))
            except _Deferred as deferred:
                later.append((len(responses), asyncio.ensure_future(deferred.work)))
                responses.append(_response(req_id, None))
            except _Grouped as group:
                grouped.append((len(responses), group.work))
                responses.append(_response(req_id, None))
            except Exception as exc:
                responses.append(_response(req_id, error=exc))
            if "id" not in request:
                responses[-1] = None  # a notification: executed, not answered
        if waits:
            self.producer.wake()
            await self._await_sends(responses, waits)
        if grouped:
            later += self._run_grouped(grouped)
        if later:
            await self._await_later(responses, later)
        self.stats.record(labels, responses, time.perf_counter() - started)
        return [r for r in responses if r is not None]

    def _run_grouped(
        self, grouped: list[tuple[int, Callable[[], Any]]]
    ) -> list[tuple[int, asyncio.Task[Any]]]:
        """One isolated job for the lot; a task per request that takes its own answer."""
        job = asyncio.ensure_future(self.isolator.run(lambda: outcomes(w for _, w in grouped)))

        async def answer(position: int) -> Any:
            return unwrap((await job)[position])

        return [(index, asyncio.ensure_future(answer(i))) for i, (index, _) in enumerate(grouped)]

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

    @staticmethod
    async def _await_later(
        responses: list[dict[str, Any] | None], later: list[tuple[int, asyncio.Task[Any]]]
    ) -> None:
        """Fill in the answers of work that ran off the event loop."""
        await asyncio.wait([task for _, task in later])
        for index, task in later:
            response = responses[index]
            if response is None:
                continue  # a notification
            error = task.exception()
            responses[index] = (
                _response(response["id"], error=error)
                if error is not None
                else _response(response["id"], task.result())
            )

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
        self, decoded: Transaction | RollupError, started: float
    ) -> tuple[str, asyncio.Future[Receipt | RollupError] | None]:
        """Admit; return the hash and, if it can go in the next block, a future of its receipt.
        `started`: when its body arrived (perf_counter), for the send-to-durable histogram."""
        if isinstance(decoded, RollupError):
            raise decoded
        if self.admission_gate is not None:
            self.admission_gate()
        ready = self.node.admit(decoded)
        tx_hash = codec.data(decoded.hash)
        if not ready:
            return tx_hash, None
        future: asyncio.Future[Receipt | RollupError] = asyncio.get_running_loop().create_future()
        durable = self.stats.send_to_durable

        def done(result: Receipt | RollupError) -> None:
            if not isinstance(result, RollupError):
                durable.observe(time.perf_counter() - started)
            if not future.done():
                future.set_result(result)

        self.node.watch(decoded.hash, done)
        return tx_hash, future


class _Deferred(Exception):  # noqa: N818 - carries work out of the synchronous dispatch
    """A request whose answer is computed off the event loop (`work` is awaited later)."""

    def __init__(self, work: Coroutine[Any, Any, Any]) -> None:
        self.work = work


class _Grouped(Exception):  # noqa: N818 - carries work out of the synchronous dispatch
    """A cheap simulation that found its batch's budget spent: it runs isolated together with
    the batch's other such requests, in one child (one fork for the lot, not one each)."""

    def __init__(self, work: Callable[[], Any]) -> None:
        self.work = work


class _Call:
    """Dispatch of one request of a body: which handler, with what, and where it runs."""

    def __init__(
        self,
        server: RpcServer,
        session: Subscriptions | None,
        origin: str | None,
        client: str,
        budget: Budget,
    ) -> None:
        self.server, self.session, self.origin, self.budget = server, session, origin, budget
        self.client = client

    def __call__(self, method: Any, params: Any) -> Any:
        if params is None:
            params = []
        if not isinstance(params, list):
            raise InvalidParams("invalid argument: params must be an array")
        if method in ("eth_subscribe", "eth_unsubscribe"):
            return self._subscription(method, params)
        server = self.server
        local = server._filter_methods.get(method)
        spec = local or METHODS.get(method)
        if spec is None:
            raise MethodNotFound(str(method))
        if spec.private:
            self._check_trusted(method)
        args = _arguments(spec, params)
        if local is not None:
            answer = spec.handler(self.client, *args)
            if isinstance(answer, LogQuery):  # a scan over blocks: off the event loop
                raise _Deferred(self._in_thread(filter_logs, (server.node, answer.criteria)))
            return answer
        target = (server.node,)
        if spec.runs == "loop":
            return spec.handler(*target, *args)
        if spec.runs == "thread":
            raise _Deferred(self._in_thread(spec.handler, (*target, *args)))
        work = functools.partial(spec.handler, *target, *args, **self._isolated_keywords(spec))
        if spec.runs == "budget":
            before = self.budget.remaining
            try:
                return spec.handler(
                    *target, *args, gas_cap=server.limits.gas_cap, budget=self.budget
                )
            except NeedsIsolation:
                if self.budget.remaining == before:  # the batch's budget ran out before it
                    raise _Grouped(work) from None
        raise _Deferred(server.isolator.run(work))

    def _isolated_keywords(self, spec: Method) -> dict[str, Any]:
        if spec.runs == "budget":
            return {"gas_cap": self.server.limits.gas_cap, "budget": None}
        return {}

    async def _in_thread(self, function: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        async with self.server._scans:
            return await asyncio.to_thread(function, *args)

    def _subscription(self, method: str, params: list[Any]) -> Any:
        if self.session is None:
            error = MethodNotFound(method)
            error.message = "notifications not supported"  # geth's answer over HTTP
            raise error
        if method == "eth_subscribe":
            return self.session.subscribe(params)
        return self.session.unsubscribe(params)

    def _trusted(self) -> bool:
        """No Origin header (not a browser), or one the operator trusts."""
        return self.origin is None or self.origin in self.server.access.trusted_origins

    def _check_trusted(self, method: str) -> None:
        if not self._trusted():
            error = MethodNotFound(method)
            error.message = f"the method {method} is not available to pages of other origins"
            raise error

    def signed(self, params: Any) -> Transaction:
        """eth_sendTransaction's transaction, filled in and signed with a dev account's key
        (services/rpc/wallet.py): private, like every method that uses node-held keys. Its gas
        estimate runs within the batch's budget on the loop, never isolated."""
        self._check_trusted("eth_sendTransaction")
        if not isinstance(params, list) or len(params) != 1:
            raise InvalidParams("eth_sendTransaction takes exactly one parameter")
        request = wallet.tx_request(params[0])
        node = self.server.node
        try:
            raw = wallet.signed_transaction(node, request, self.server.limits.gas_cap, self.budget)
        except NeedsIsolation:
            raise LimitExceeded(
                "estimating this transaction's gas takes more than a request may use here: "
                "give its gas"
            ) from None
        return decode_transaction(raw, node.chain_id)


def _arguments(spec: Method, params: list[Any]) -> list[Any]:
    if not spec.required <= len(params) <= len(spec.parsers):
        raise InvalidParams(
            f"missing value for required argument {len(params)}"
            if len(params) < spec.required
            else f"too many arguments, want at most {len(spec.parsers)}"
        )
    return [parse(value) for parse, value in zip(spec.parsers, params, strict=False)]


def _filter_methods(filters: FilterRegistry) -> dict[str, Method]:
    """Methods of the node's filters; their handlers take the client first."""
    return {
        "eth_newFilter": method(filters.new_filter, log_filter),
        "eth_newBlockFilter": method(filters.new_block_filter),
        "eth_newPendingTransactionFilter": method(filters.new_pending_filter),
        "eth_getFilterChanges": method(filters.changes, anything),
        "eth_getFilterLogs": method(filters.logs, anything),
        "eth_uninstallFilter": method(filters.uninstall, anything),
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


class NodeLoop:
    """The event loop the node's state lives on. The transport (uvicorn, Starlette) may run on
    a thread of its own (services/node.py): then everything that touches the node hops to the
    node's loop, and parsing HTTP, routing and sending never run on the loop that builds
    blocks. With `loop=None` (or the same loop) nothing hops."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.loop = loop

    async def run(self, work: Coroutine[Any, Any, Any]) -> Any:
        if self.loop is None or self.loop is asyncio.get_running_loop():
            return await work
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(work, self.loop))

    async def call(self, function: Callable[[], Any]) -> Any:
        async def run() -> Any:
            return function()

        return await self.run(run())


def create_app(server: RpcServer, node_loop: NodeLoop | None = None) -> Starlette:
    """`node_loop`: where the node runs, when the transport has a thread of its own."""
    large_bodies = asyncio.Semaphore(1)
    node = node_loop or NodeLoop()

    async def rpc_endpoint(request: Request) -> Response:
        header = request.headers.get("content-length", "")
        length = int(header) if header.isdigit() else None  # None: chunked, unknown
        if length is not None and length > server.limits.max_body_bytes:
            body = orjson.dumps(_response(None, error=InvalidRequest("request body too large")))
            return Response(body, headers=_JSON)
        # Large bodies are read and parsed one at a time: the others wait unread (uvicorn
        # stops reading a connection whose body nobody takes), so a flood of them costs the
        # event loop one body's work between two turns of block production, not eight.
        large = length is None or length > LARGE_BODY
        async with large_bodies if large else contextlib.nullcontext():
            received = await _read_body(request, server.limits.max_body_bytes)
            if received is None:
                body = orjson.dumps(_response(None, error=InvalidRequest("request body too large")))
                return Response(body, headers=_JSON)
            client = request.client.host if request.client is not None else ""
            out = await node.run(
                server.handle_body(received, origin=request.headers.get("origin"), client=client)
            )
        return Response(out or b"", headers=_JSON)

    async def websocket_endpoint(socket: WebSocket) -> None:
        session = await node.call(lambda: server.hub.open(server.limits.ws_max_queue))
        if session is None:
            await socket.close(code=1013, reason="too many connections; try again later")
            return
        await socket.accept()
        sender = asyncio.create_task(_pump(socket, session, node))
        origin, client = socket.headers.get("origin"), f"ws:{id(session)}"
        try:
            while not session.overflowed:
                message = await socket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                body = message.get("bytes") or (message.get("text") or "").encode()
                await node.run(_answer(server, body, session, origin, client))
        except WebSocketDisconnect:
            pass
        finally:
            await node.call(session.close)
            sender.cancel()

    def health_body() -> bytes:
        n = server.node
        return orjson.dumps(
            {"chain_id": n.chain_id, "head": n.committed.number, "pool": len(n.mempool)}
        )

    async def health(_request: Request) -> Response:
        return Response(await node.call(health_body), headers=_JSON)

    access = server.access

    async def metrics(request: Request) -> Response:
        origin = request.headers.get("origin")
        if origin is not None and origin not in access.trusted_origins:
            return Response(METRICS_REFUSED, status_code=403, media_type="text/plain")
        text = await node.call(server.metrics.render)
        return Response(text, headers={"content-type": CONTENT_TYPE})

    return Starlette(
        routes=[
            Route("/", rpc_endpoint, methods=["POST"]),
            WebSocketRoute("/", websocket_endpoint),
            Route("/health", health, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ],
        middleware=[
            Middleware(TrustedHostMiddleware, allowed_hosts=list(access.hosts)),
            Middleware(
                CORSMiddleware,
                allow_origins=list(access.cors_origins),
                allow_methods=["POST", "GET"],
                allow_headers=["*"],
            ),
        ],
    )


SEND_TIMEOUT = 10.0  # a reader that takes no frame for this long is closed
METRICS_REFUSED = "metrics are not served to pages of other origins\n"
LARGE_BODY = 256 * 1024  # bodies above this are handled one at a time


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The whole body, or None past `limit` bytes."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def _answer(
    server: RpcServer, body: bytes, session: Subscriptions, origin: str | None, client: str
) -> None:
    """One WebSocket message, on the node's loop: its answer joins the session's queue."""
    out = await server.handle_body(body, session, origin, client)
    if out is not None and not session.overflowed:
        await session.queue.put(out.decode())


async def _pump(socket: WebSocket, session: Subscriptions, node: NodeLoop) -> None:
    """Send answers and notifications in order; close a connection that fell too far behind
    or stopped reading. The queue is the node's: it is read on the node's loop."""
    while True:
        text = await node.run(session.queue.get())
        if session.overflowed or text is None:
            await _close(socket, "subscription queue full: reading too slowly")
            return
        try:
            await asyncio.wait_for(socket.send_text(text), SEND_TIMEOUT)
        except TimeoutError:
            session.overflowed = True
            await node.call(session.close)
            await _close(socket, "not reading")
            return


async def _close(socket: WebSocket, reason: str) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(socket.close(code=1008, reason=reason), 1.0)
