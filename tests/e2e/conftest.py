"""Fixtures of the end-to-end tests: a rendered token app, real node processes, web3 clients.

Every module gets its own node (module scope) on its own data dir, so modules never see each
other's blocks. Inside a module tests share the chain: they use fresh accounts or measure deltas,
never absolute balances, and they never send concurrently.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3 import HTTPProvider, Web3

from rollup.genesis import DEV_KEYS
from rollup.manifest import app_address
from services.launch import NodeProcess
from services.rpcclient import request
from services.scaffold import scaffold

APP_NAME = "tok"
CHAIN_ID = 901001
GWEI = 10**9
BASE_FEE = 1 * GWEI  # rollup.toml.tmpl: base_fee = "1 gwei"
BLOCK_GAS_LIMIT = 1_000_000_000  # the manifest's default gas_limit
TOKEN_SUPPLY = 10**24  # rollup.toml.tmpl: [app.init] supply, minted to dev account 0
BALANCES_SLOT = 3  # Token fields: token_name, token_symbol, supply, balances, allowances
HTTP_TIMEOUT = 15.0
RECEIPT_TIMEOUT = 15.0

ERC20_ABI: list[dict[str, Any]] = [
    {
        "type": "function",
        "name": "name",
        "inputs": [],
        "outputs": [{"name": "", "type": "string"}],
        "stateMutability": "view",
    },
    {
        "type": "function",
        "name": "symbol",
        "inputs": [],
        "outputs": [{"name": "", "type": "string"}],
        "stateMutability": "view",
    },
    {
        "type": "function",
        "name": "decimals",
        "inputs": [],
        "outputs": [{"name": "", "type": "uint8"}],
        "stateMutability": "view",
    },
    {
        "type": "function",
        "name": "totalSupply",
        "inputs": [],
        "outputs": [{"name": "", "type": "uint256"}],
        "stateMutability": "view",
    },
    {
        "type": "function",
        "name": "balanceOf",
        "inputs": [{"name": "owner", "type": "address"}],
        "outputs": [{"name": "", "type": "uint256"}],
        "stateMutability": "view",
    },
    {
        "type": "function",
        "name": "allowance",
        "inputs": [{"name": "owner", "type": "address"}, {"name": "spender", "type": "address"}],
        "outputs": [{"name": "", "type": "uint256"}],
        "stateMutability": "view",
    },
    {
        "type": "function",
        "name": "transfer",
        "inputs": [{"name": "to", "type": "address"}, {"name": "value", "type": "uint256"}],
        "outputs": [{"name": "", "type": "bool"}],
        "stateMutability": "nonpayable",
    },
    {
        "type": "function",
        "name": "approve",
        "inputs": [{"name": "spender", "type": "address"}, {"name": "value", "type": "uint256"}],
        "outputs": [{"name": "", "type": "bool"}],
        "stateMutability": "nonpayable",
    },
    {
        "type": "function",
        "name": "transferFrom",
        "inputs": [
            {"name": "from", "type": "address"},
            {"name": "to", "type": "address"},
            {"name": "value", "type": "uint256"},
        ],
        "outputs": [{"name": "", "type": "bool"}],
        "stateMutability": "nonpayable",
    },
    {
        "type": "event",
        "name": "Transfer",
        "anonymous": False,
        "inputs": [
            {"name": "from", "type": "address", "indexed": True},
            {"name": "to", "type": "address", "indexed": True},
            {"name": "value", "type": "uint256", "indexed": False},
        ],
    },
    {
        "type": "event",
        "name": "Approval",
        "anonymous": False,
        "inputs": [
            {"name": "owner", "type": "address", "indexed": True},
            {"name": "spender", "type": "address", "indexed": True},
            {"name": "value", "type": "uint256", "indexed": False},
        ],
    },
    {
        "type": "error",
        "name": "ERC20InsufficientBalance",
        "inputs": [
            {"name": "sender", "type": "address"},
            {"name": "balance", "type": "uint256"},
            {"name": "needed", "type": "uint256"},
        ],
    },
    {
        "type": "error",
        "name": "ERC20InsufficientAllowance",
        "inputs": [
            {"name": "spender", "type": "address"},
            {"name": "allowance", "type": "uint256"},
            {"name": "needed", "type": "uint256"},
        ],
    },
    {
        "type": "error",
        "name": "ERC20InvalidReceiver",
        "inputs": [{"name": "receiver", "type": "address"}],
    },
]


# ---- collection ----------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    # web3.py's shipped suites (web3._utils.module_testing) mark their async twins with
    # pytest-asyncio's marker at import; they are never collected here, but --strict-markers
    # rejects the unknown name on import.
    config.addinivalue_line("markers", "asyncio: pytest-asyncio's marker (web3.py's suites)")
    config.addinivalue_line(
        "markers", "after_targets: runs after its module's other tests (reads `target_outcomes`)"
    )
    config.stash[TARGET_OUTCOMES] = {}


@pytest.hookimpl(trylast=True)  # after pytest's own reordering by fixture params
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the tests a module names in `DESELECTED` (test name -> reason), e.g. tests of
    web3.py's shipped suites that the reference node fails too; the reasons live in the module,
    next to the suite they belong to. Mark strict xfails per `target` from the module's
    `TARGET_XFAILS` (target -> test name -> reason). Then move `after_targets` tests last."""
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        module = getattr(item, "module", None)
        listed = getattr(module, "DESELECTED", None) or {}
        name = getattr(item, "originalname", item.name)
        (dropped if name in listed else kept).append(item)
        xfails = getattr(module, "TARGET_XFAILS", None) or {}
        reason = xfails.get(_target(item), {}).get(name)
        if reason is not None:
            item.add_marker(pytest.mark.xfail(reason=reason, strict=True))
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = _targets_in_turn(kept)


def _targets_in_turn(items: list[pytest.Item]) -> list[pytest.Item]:
    """Within each module: every test of the first `target`, then of the next (each starts its
    node once), and the module's `after_targets` tests last; modules keep their order."""
    modules: dict[str, int] = {}
    targets: dict[tuple[str, object], int] = {}

    def key(item: pytest.Item) -> tuple[int, bool, int]:
        module, target = item.nodeid.partition("::")[0], _target(item)
        rank = targets.setdefault((module, target), len(targets)) if target is not None else 0
        after = item.get_closest_marker("after_targets") is not None
        return modules.setdefault(module, len(modules)), after, rank

    return sorted(items, key=key)


# ---- outcomes per target ------------------------------------------------------------------
#
# A module that parametrizes a `target` fixture (the node a suite runs against) gets each test's
# outcome recorded per target; its `after_targets` tests run after its other tests, so they can
# compare the targets through the `target_outcomes` fixture.

TARGET_OUTCOMES = pytest.StashKey[dict[str, dict[str, dict[str, str]]]]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    target = _target(item)
    if target is not None:
        module, test = _target_free_id(item, target)
        outcomes = item.config.stash[TARGET_OUTCOMES].setdefault(module, {})
        by_target = outcomes.setdefault(test, {})
        by_target[target] = _worse(by_target.get(target), _outcome(report))
    return report


def _target(item: pytest.Item) -> str | None:
    """The item's `target` parameter, if it has one."""
    callspec = getattr(item, "callspec", None)
    target = callspec.params.get("target") if callspec is not None else None
    return target if isinstance(target, str) else None


def _target_free_id(item: pytest.Item, target: str) -> tuple[str, str]:
    """(module node id, the test's node id within it without the target's parameter id)."""
    module, _, test = item.nodeid.partition("::")
    name, bracket, ids = test.partition("[")
    if bracket:
        kept = [part for part in ids.rstrip("]").split("-") if part != target]
        test = f"{name}[{'-'.join(kept)}]" if kept else name
    return module, test


def _outcome(report: pytest.TestReport) -> str:
    if hasattr(report, "wasxfail"):
        return "xpassed" if report.passed else "xfailed"
    if report.failed:
        return "failed" if report.when == "call" else f"error in {report.when}"
    return "skipped" if report.skipped else "passed"


def _worse(before: str | None, now: str) -> str:
    """A test's outcome over its phases: the first that is not `passed`."""
    return now if before in (None, "passed") else before


@pytest.fixture
def target_outcomes(request: pytest.FixtureRequest) -> dict[str, dict[str, str]]:
    """This module's recorded outcomes so far: test id (target-free) -> target -> outcome."""
    module = request.node.nodeid.partition("::")[0]
    return request.config.stash[TARGET_OUTCOMES].get(module, {})


# ---- processes -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def app_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return scaffold(tmp_path_factory.mktemp("app") / APP_NAME, "token", APP_NAME, CHAIN_ID)


@pytest.fixture(scope="session")
def start_node(
    app_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., NodeProcess]]:
    """Start a node on a fresh (or the given) data dir; every one is stopped at session end."""
    started: list[NodeProcess] = []

    def start(data_dir: Path | None = None) -> NodeProcess:
        node = NodeProcess(app_dir, data_dir or tmp_path_factory.mktemp("data"))
        started.append(node)
        node.start()
        return node

    yield start
    for node in started:
        node.stop()


@pytest.fixture(scope="module")
def node(app_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    process = NodeProcess(app_dir, tmp_path_factory.mktemp("data"))
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="session")
def dev_accounts() -> list[LocalAccount]:
    return [Account.from_key(key) for key in DEV_KEYS]


@pytest.fixture(scope="session")
def token_address() -> str:
    return Web3.to_checksum_address(app_address(APP_NAME))


# ---- helpers -------------------------------------------------------------------------------


class Chain:
    """Small conveniences over one node: raw JSON-RPC, signing and sending, fresh accounts.

    Test modules cannot import this conftest (importlib import mode), so the chain's constants
    travel on this object too.
    """

    chain_id = CHAIN_ID
    base_fee = BASE_FEE
    gas_limit = BLOCK_GAS_LIMIT
    token_supply = TOKEN_SUPPLY
    balances_slot = BALANCES_SLOT
    gwei = GWEI

    def __init__(self, url: str, faucet: LocalAccount) -> None:
        self.url, self.faucet = url, faucet
        self.w3 = Web3(HTTPProvider(url, request_kwargs={"timeout": HTTP_TIMEOUT}))
        self.token = self.w3.eth.contract(
            address=Web3.to_checksum_address(app_address(APP_NAME)), abi=ERC20_ABI
        )
        self.http = httpx.Client(timeout=HTTP_TIMEOUT, trust_env=False)

    def post(self, body: Any) -> Any:
        """POST a JSON body (or raw bytes); the HTTP status must be 200 whatever happened."""
        if isinstance(body, bytes):
            response = self.http.post(
                self.url, content=body, headers={"content-type": "application/json"}
            )
        else:
            response = self.http.post(self.url, json=body)
        assert response.status_code == 200, response.text
        return response.json() if response.content else None

    def request(self, method: str, *params: Any, req_id: Any = 1) -> dict[str, Any]:
        """The whole response object of one call."""
        response = self.post(request(method, params, req_id))
        assert response["id"] == req_id and response["jsonrpc"] == "2.0", response
        return response

    def rpc(self, method: str, *params: Any) -> Any:
        """The result of one call; fails the test on an error response."""
        response = self.request(method, *params)
        assert "error" not in response, response
        return response["result"]

    def head(self) -> int:
        return int(self.rpc("eth_blockNumber"), 16)

    def sign(self, account: LocalAccount, **fields: Any) -> HexBytes:
        """A signed raw transaction; EIP-1559 with 2 gwei / 1 gwei tip unless told otherwise."""
        tx: dict[str, Any] = {"chainId": CHAIN_ID, "gas": 21_000, "value": 0}
        if "gasPrice" not in fields:
            tx |= {"maxFeePerGas": 2 * GWEI, "maxPriorityFeePerGas": GWEI}
        tx |= fields
        if "nonce" not in tx:
            tx["nonce"] = self.w3.eth.get_transaction_count(account.address, "pending")
        return HexBytes(account.sign_transaction(tx).raw_transaction)

    def send_raw(self, raw: bytes) -> HexBytes:
        return self.w3.eth.send_raw_transaction(raw)

    def wait(self, tx_hash: bytes) -> Any:
        return self.w3.eth.wait_for_transaction_receipt(
            tx_hash, timeout=RECEIPT_TIMEOUT, poll_latency=0.02
        )

    def send(self, account: LocalAccount, **fields: Any) -> Any:
        """Sign, send and wait for the receipt."""
        return self.wait(self.send_raw(self.sign(account, **fields)))

    def fresh_account(self, eth: int = 10) -> LocalAccount:
        """A new random account, funded from the faucet (none when eth == 0)."""
        account: LocalAccount = Account.create()
        if eth:
            receipt = self.send(self.faucet, to=account.address, value=eth * 10**18)
            assert receipt.status == 1
        return account

    def close(self) -> None:
        self.http.close()


@pytest.fixture(scope="session")
def connect(dev_accounts: list[LocalAccount]) -> Iterator[Callable[[NodeProcess], Chain]]:
    """A `Chain` over any node process (dev account 9 is the faucet); closed at session end."""
    opened: list[Chain] = []

    def open_chain(process: NodeProcess) -> Chain:
        helper = Chain(process.url, faucet=dev_accounts[9])
        opened.append(helper)
        return helper

    yield open_chain
    for helper in opened:
        helper.close()


@pytest.fixture(scope="module")
def chain(node: NodeProcess, connect: Callable[[NodeProcess], Chain]) -> Chain:
    return connect(node)


@pytest.fixture(scope="module")
def w3(chain: Chain) -> Web3:
    return chain.w3


@pytest.fixture(scope="module")
def token(chain: Chain) -> Any:
    return chain.token
