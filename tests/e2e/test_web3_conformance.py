"""web3.py's own node conformance suite against an EVM app node, with Anvil as the reference.

`EthModuleTest`, `NetModuleTest` and `Web3ModuleTest` ship inside web3.py
(`web3._utils.module_testing`) and are what web3.py runs against geth. Every test runs against
two targets (the module-scoped `target` fixture): "app", the `evm` template on our node, and
"anvil", Anvil (services/anvil.py) on the same chain id, 131277322940537 (two tests hard-code
it), and the app EVM's hardfork, Cancun. The fixtures below build the chain state the suite
expects on either, the way web3.py's `tests/integration` fixtures do for geth: the keyfile
account 0xdC544d1A... (funded here by a transfer from a dev account; Anvil's dev accounts are
ours), web3.py's six test contracts from `web3._utils.contract_sources.contract_data`, a
transaction with a log, an empty block (genesis) and a mined value transfer.

Both nodes hold the dev accounts' keys (eth_accounts and the suite's tests that read
w3.eth.accounts run), but not the keyfile account's, so the test client signs for it locally:
`SignAndSendRawMiddlewareBuilder` turns the suite's `eth_sendTransaction` from the keyfile
account into a locally signed `eth_sendRawTransaction`, as a dapp's wallet does.

Anvil is the bar: only tests Anvil fails too are deselected (`DESELECTED`, each with its
reason; tests/e2e/conftest.py drops them at collection and pytest counts them). Tests Anvil
fails and we pass run, as strict xfails on Anvil (`ANVIL_FAILS`). tests/e2e/conftest.py records
each test's outcome per target, and the last test of the module fails if Anvil passes a test
the app does not, unless `APP_GAPS` names it (a strict xfail on the app until it passes).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import to_bytes
from eth_utils.toolz import identity
from hexbytes import HexBytes
from web3 import Web3
from web3._utils.contract_sources.contract_data.emitter_contract import EMITTER_CONTRACT_DATA
from web3._utils.contract_sources.contract_data.math_contract import MATH_CONTRACT_DATA
from web3._utils.contract_sources.contract_data.offchain_lookup import OFFCHAIN_LOOKUP_DATA
from web3._utils.contract_sources.contract_data.panic_errors_contract import (
    PANIC_ERRORS_CONTRACT_DATA,
)
from web3._utils.contract_sources.contract_data.revert_contract import REVERT_CONTRACT_DATA
from web3._utils.contract_sources.contract_data.storage_contract import STORAGE_CONTRACT_DATA
from web3._utils.module_testing import EthModuleTest, NetModuleTest, Web3ModuleTest
from web3._utils.module_testing.utils import RequestMocker
from web3.middleware import SignAndSendRawMiddlewareBuilder

from rollup.genesis import DEV_KEYS
from services.anvil import AnvilProcess
from services.launch import NodeProcess
from services.process import free_port
from services.scaffold import scaffold

pytestmark = pytest.mark.e2e

CHAIN_ID = 131277322940537  # web3.py's geth fixture genesis; test_eth_chain_id and a raw send
KEYFILE_ACCOUNT_PKEY = "0x58d23b55bc9cdce1f18c2500f40ff4ab7245df9a89505e9b1fa4851f623d241d"
KEYFILE_ACCOUNT_ADDRESS = "0xdC544d1AA88Ff8bbd2F2AeC754B1F1e99e1812fd"
LOG_DOUBLE_WITH_INDEX = 9  # the emitter's LogFunctions enum, as web3.py's fixture calls it
RECEIPT_TIMEOUT = 30
TARGETS = ("app", "anvil")  # every suite test runs on both; Anvil is the reference
ANVIL_HARDFORK = "cancun"  # the app EVM's spec
CLIENT_PREFIX = {"app": "app-rollup/", "anvil": "anvil/"}  # web3_clientVersion

_ANVIL = "Anvil fails it too: "
_KEYFILE = (
    _ANVIL + "it signs on the node with web3.py's geth keyfile account, whose key neither node "
    "holds (Anvil answers 'No Signer available', we answer geth's 'unknown account')"
)
_TYPED_DATA = (
    _ANVIL + "it signs typed data on the node with the keyfile account, whose key neither node "
    "holds (we answer 'unknown account'; Anvil answers eth_signTypedData 'Not implemented')"
)
_MEMPOOL = (
    _ANVIL + "it needs a pending transaction; Anvil automines (it mines each transaction as it "
    "arrives) and our node writes a transaction's block before eth_sendRawTransaction answers "
    "(README: soft confirmations), so a sent transaction is never pending on either"
)

# web3.py's suite runs on both targets with no deselections except where Anvil itself fails:
# name of the test in web3.py's suite (every parametrization) -> why it does not run.
DESELECTED: dict[str, str] = {
    "test_eth_sign": _KEYFILE,
    "test_eth_sign_ens_names": _KEYFILE,
    "test_eth_sign_transaction_legacy": _KEYFILE,
    "test_eth_sign_transaction": _KEYFILE,
    "test_eth_sign_transaction_hex_fees": _KEYFILE,
    "test_eth_sign_transaction_ens_names": _KEYFILE,
    "test_eth_sign_typed_data": _TYPED_DATA,
    "test_invalid_eth_sign_typed_data": _TYPED_DATA,
    "test_eth_replace_transaction_legacy": _MEMPOOL,
    "test_eth_replace_transaction": _MEMPOOL,
    "test_eth_replace_transaction_underpriced": _MEMPOOL,
    "test_eth_replace_transaction_gas_price_defaulting_minimum": _MEMPOOL,
    "test_eth_replace_transaction_gas_price_defaulting_strategy_higher": _MEMPOOL,
    "test_eth_replace_transaction_gas_price_defaulting_strategy_lower": _MEMPOOL,
    "test_eth_modify_transaction_legacy": _MEMPOOL,
    "test_eth_modify_transaction": _MEMPOOL,
    "test_eth_get_transaction_receipt_unmined": _MEMPOOL,
    "test_eth_wait_for_transaction_receipt_unmined": _MEMPOOL,
    "test_gas_price_from_strategy_bypassed_for_dynamic_fee_txn": (
        _ANVIL + "client side: eth_sendTransaction from the keyfile account is signed locally, "
        "web3.py's SignAndSendRawMiddleware fills the strategy's gasPrice into a dynamic-fee "
        "transaction and eth-account refuses to sign it ('Unknown kwargs: gasPrice')"
    ),
    "test_sign_authorization_send_raw_and_send_set_code_transactions": (
        _ANVIL + "EIP-7702 set-code transactions are Prague, and both run Cancun, the app EVM's "
        "spec (we answer 'transaction type not supported'; Anvil answers 'EIP-7702 fields "
        "received but is not supported by the current hardfork')"
    ),
}

# Tests Anvil fails and we pass: they run on both targets and are expected to fail (strictly:
# an Anvil that passes one fails the run, and it moves out of here) on Anvil.
ANVIL_FAILS: dict[str, str] = {
    "test_eth_create_access_list": (
        "Anvil answers eth_createAccessList with 'EVM error OutOfGas': it runs the call within "
        "the transaction's gas, eth_estimateGas's 45395 without a list, and the call with the "
        "list it builds needs 47695"
    ),
    "test_eth_getBlockByHash_pending": "Anvil's pending block has a hash (geth's has null)",
    "test_eth_get_logs_without_logs": (
        "Anvil answers eth_getLogs with fromBlock > toBlock with [] instead of an error"
    ),
    "test_eth_get_logs_with_logs_none_topic_args": (
        "Anvil's eth_getLogs matches topics [null, null, null] with a log of 2 topics"
    ),
    "test_net_peer_count": "Anvil has no net_peerCount ('Method not found')",
}

# Gaps: tests Anvil passes and we fail. They run on both targets and are expected to fail
# (strictly) on the app until the gap closes; the comparison test lets only these through.
APP_GAPS: dict[str, str] = {
    "test_eth_simulate_v1": (
        "eth_simulateV1's traceTransfers is not implemented ('eth_simulateV1: traceTransfers "
        "is not supported by this node'); Anvil returns the transfer logs"
    ),
}

# read by tests/e2e/conftest.py: target -> test name -> why it is expected to fail there
TARGET_XFAILS: dict[str, dict[str, str]] = {"anvil": ANVIL_FAILS, "app": APP_GAPS}


# ---- the chain web3.py's suite expects ---------------------------------------------------------


@dataclass(frozen=True)
class SuiteChain:
    """What web3.py's geth fixture (`geth_fixture_data`) records about the chain it built."""

    math_deploy_txn_hash: HexBytes
    math_address: str
    emitter_address: str
    revert_address: str
    offchain_lookup_address: str
    panic_errors_address: str
    storage_address: str
    txn_hash_with_log: HexBytes
    block_hash_with_log: HexBytes
    mined_txn_hash: HexBytes
    block_with_txn_hash: HexBytes
    empty_block_hash: HexBytes


def _send(w3: Web3, account: LocalAccount, tx: dict[str, Any]) -> Any:
    """Sign locally, send raw, and return the receipt (which must show success)."""
    tx = {"chainId": CHAIN_ID, "nonce": w3.eth.get_transaction_count(account.address), **tx}
    tx_hash = w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=RECEIPT_TIMEOUT)
    assert receipt["status"] == 1, receipt
    return receipt


def _deploy(w3: Web3, account: LocalAccount, data: dict[str, Any]) -> Any:
    factory = w3.eth.contract(abi=data["abi"], bytecode=data["bytecode"])
    tx = factory.constructor().build_transaction(
        {"from": account.address, "nonce": w3.eth.get_transaction_count(account.address)}
    )
    receipt = _send(w3, account, tx)
    assert w3.eth.get_code(receipt["contractAddress"]) == HexBytes(data["bytecode_runtime"])
    return receipt


def setup_chain_state(w3: Web3, keyfile: LocalAccount) -> SuiteChain:
    """web3.py's `generate_fixtures/go_ethereum.py::setup_chain_state`, signed locally.

    Order matters: no log may come before the emitter's (test_eth_get_logs_without_logs reads
    blocks 0 .. its block - 1), and each transaction gets its own block at index 0.
    """
    funder = Account.from_key(DEV_KEYS[1])
    _send(
        w3,
        funder,
        {
            "to": keyfile.address,
            "value": 1_000 * 10**18,
            "gas": 21_000,
            "maxFeePerGas": 2 * 10**9,
            "maxPriorityFeePerGas": 10**9,
        },
    )
    math = _deploy(w3, keyfile, MATH_CONTRACT_DATA)
    emitter = _deploy(w3, keyfile, EMITTER_CONTRACT_DATA)
    emitter_contract = w3.eth.contract(address=emitter["contractAddress"], **EMITTER_CONTRACT_DATA)
    log_tx = emitter_contract.functions.logDouble(LOG_DOUBLE_WITH_INDEX, 12345, 54321)
    with_log = _send(w3, keyfile, log_tx.build_transaction({"from": keyfile.address}))
    revert = _deploy(w3, keyfile, REVERT_CONTRACT_DATA)
    offchain = _deploy(w3, keyfile, OFFCHAIN_LOOKUP_DATA)
    panic = _deploy(w3, keyfile, PANIC_ERRORS_CONTRACT_DATA)
    storage = _deploy(w3, keyfile, STORAGE_CONTRACT_DATA)
    mined = _send(
        w3,
        keyfile,
        {
            "to": keyfile.address,
            "value": 1,
            "gas": 21_000,
            "maxFeePerGas": w3.eth.gas_price * 2,
            "maxPriorityFeePerGas": 10**9,
        },
    )
    return SuiteChain(
        math_deploy_txn_hash=math["transactionHash"],
        math_address=math["contractAddress"],
        emitter_address=emitter["contractAddress"],
        revert_address=revert["contractAddress"],
        offchain_lookup_address=offchain["contractAddress"],
        panic_errors_address=panic["contractAddress"],
        storage_address=storage["contractAddress"],
        txn_hash_with_log=with_log["transactionHash"],
        block_hash_with_log=with_log["blockHash"],
        mined_txn_hash=mined["transactionHash"],
        block_with_txn_hash=mined["blockHash"],
        empty_block_hash=w3.eth.get_block(0)["hash"],
    )


# ---- fixtures (the names web3.py's suite asks for) ---------------------------------------------


@pytest.fixture(scope="module", params=TARGETS)
def target(request: pytest.FixtureRequest) -> str:
    """The node the suite runs against: our EVM app ("app") or Anvil, the reference ("anvil")."""
    return str(request.param)


@pytest.fixture(scope="module")
def rpc_url(target: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if target == "anvil":
        anvil = AnvilProcess(log_dir=tmp_path_factory.mktemp("anvil"))
        anvil.start(chain_id=CHAIN_ID, hardfork=ANVIL_HARDFORK)
        try:
            yield anvil.rpc_url
        finally:
            anvil.stop()
        return
    app_dir = scaffold(tmp_path_factory.mktemp("web3suite") / "app", "evm", "web3suite", CHAIN_ID)
    with NodeProcess(app_dir, tmp_path_factory.mktemp("data")) as node:
        yield node.url


@pytest.fixture(scope="module")
def keyfile_account() -> LocalAccount:
    account: LocalAccount = Account.from_key(KEYFILE_ACCOUNT_PKEY)
    assert account.address == KEYFILE_ACCOUNT_ADDRESS
    return account


@pytest.fixture(scope="module")
def w3(rpc_url: str, keyfile_account: LocalAccount) -> Web3:
    client = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": RECEIPT_TIMEOUT}))
    client.middleware_onion.inject(
        SignAndSendRawMiddlewareBuilder.build(keyfile_account), "local_signer", layer=0
    )
    return client


@pytest.fixture(scope="module")
def suite_chain(w3: Web3, keyfile_account: LocalAccount) -> SuiteChain:
    return setup_chain_state(w3, keyfile_account)


@pytest.fixture(scope="module", params=[lambda x: to_bytes(hexstr=x), identity])
def address_conversion_func(request: pytest.FixtureRequest) -> Any:
    return request.param


@pytest.fixture(scope="module")
def keyfile_account_pkey() -> str:
    return KEYFILE_ACCOUNT_PKEY


@pytest.fixture(scope="module")
def keyfile_account_address(suite_chain: SuiteChain) -> str:
    return KEYFILE_ACCOUNT_ADDRESS


@pytest.fixture(scope="module")
def keyfile_account_address_dual_type(keyfile_account_address: str) -> str:
    return keyfile_account_address


@pytest.fixture
def request_mocker() -> type[RequestMocker]:
    return RequestMocker


@pytest.fixture
def skip_if_testrpc() -> Callable[[Web3], None]:
    """web3.py's fixture skips a few tests on the long-gone TestRPC; neither target is it."""

    def skip(w3: Web3) -> None:
        if w3.client_version.startswith("TestRPC"):
            pytest.skip("TestRPC")

    return skip


@pytest.fixture(autouse=True)
def _gateway_on_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests stay on loopback: the suite's unmocked offchain lookups (CCIP read, to
    https://web3.py/gateway) go through a proxy on a closed loopback port and fail, which is
    what test_eth_call_offchain_lookup_raises_when_all_supplied_urls_fail expects. The nodes
    are plain http on 127.0.0.1, which the https proxy does not touch."""
    closed = f"http://127.0.0.1:{free_port()}"
    for name in ("HTTPS_PROXY", "https_proxy"):
        monkeypatch.setenv(name, closed)


def _contract(w3: Web3, data: dict[str, Any], address: str) -> Any:
    return w3.eth.contract(address=address, **data)


@pytest.fixture(scope="module")
def math_contract(w3: Web3, suite_chain: SuiteChain) -> Any:
    return _contract(w3, MATH_CONTRACT_DATA, suite_chain.math_address)


@pytest.fixture(scope="module")
def math_contract_address(math_contract: Any, address_conversion_func: Any) -> Any:
    return address_conversion_func(math_contract.address)


@pytest.fixture(scope="module")
def math_contract_deploy_txn_hash(suite_chain: SuiteChain) -> HexBytes:
    return suite_chain.math_deploy_txn_hash


@pytest.fixture(scope="module")
def emitter_contract(w3: Web3, suite_chain: SuiteChain) -> Any:
    return _contract(w3, EMITTER_CONTRACT_DATA, suite_chain.emitter_address)


@pytest.fixture(scope="module")
def emitter_contract_address(emitter_contract: Any, address_conversion_func: Any) -> Any:
    return address_conversion_func(emitter_contract.address)


@pytest.fixture(scope="module")
def revert_contract(w3: Web3, suite_chain: SuiteChain) -> Any:
    return _contract(w3, REVERT_CONTRACT_DATA, suite_chain.revert_address)


@pytest.fixture(scope="module")
def offchain_lookup_contract(w3: Web3, suite_chain: SuiteChain) -> Any:
    return _contract(w3, OFFCHAIN_LOOKUP_DATA, suite_chain.offchain_lookup_address)


@pytest.fixture(scope="module")
def panic_errors_contract(w3: Web3, suite_chain: SuiteChain) -> Any:
    return _contract(w3, PANIC_ERRORS_CONTRACT_DATA, suite_chain.panic_errors_address)


@pytest.fixture(scope="module")
def storage_contract(w3: Web3, suite_chain: SuiteChain) -> Any:
    return _contract(w3, STORAGE_CONTRACT_DATA, suite_chain.storage_address)


@pytest.fixture(scope="module")
def empty_block(w3: Web3, suite_chain: SuiteChain) -> Any:
    block = w3.eth.get_block(suite_chain.empty_block_hash)
    assert block["transactions"] == []
    return block


@pytest.fixture(scope="module")
def block_with_txn(w3: Web3, suite_chain: SuiteChain) -> Any:
    return w3.eth.get_block(suite_chain.block_with_txn_hash)


@pytest.fixture(scope="module")
def mined_txn_hash(suite_chain: SuiteChain) -> HexBytes:
    return suite_chain.mined_txn_hash


@pytest.fixture(scope="module")
def block_with_txn_with_log(w3: Web3, suite_chain: SuiteChain) -> Any:
    return w3.eth.get_block(suite_chain.block_hash_with_log)


@pytest.fixture(scope="module")
def txn_hash_with_log(suite_chain: SuiteChain) -> HexBytes:
    return suite_chain.txn_hash_with_log


# ---- the suites --------------------------------------------------------------------------------


@pytest.mark.usefixtures("suite_chain")
class TestEvmAppEthModule(EthModuleTest):
    pass


class TestEvmAppNetModule(NetModuleTest):
    pass


@pytest.mark.usefixtures("suite_chain")
class TestEvmAppWeb3Module(Web3ModuleTest):
    client_prefix = ""

    @pytest.fixture(autouse=True)
    def _client_prefix(self, target: str) -> None:
        self.client_prefix = CLIENT_PREFIX[target]

    def _check_web3_client_version(self, client_version: str) -> None:  # type: ignore[override]
        assert client_version.startswith(self.client_prefix)


# ---- the comparison ----------------------------------------------------------------------------


@pytest.mark.after_targets
def test_every_test_anvil_passes_passes_on_the_app(
    target_outcomes: dict[str, dict[str, str]],
) -> None:
    """Anvil is the reference: every suite test it passes must pass on our node too.

    tests/e2e/conftest.py records each test's outcome per `target` and runs this test after
    the module's other tests; a test that did not run on both targets (`-k`) is not compared.
    Only the gaps `APP_GAPS` names pass through (each a strict xfail on the app).
    """
    both = {test: by for test, by in target_outcomes.items() if set(TARGETS) <= by.keys()}
    if not both:
        pytest.skip("the suite did not run on both targets")
    gaps = {
        test: by["app"]
        for test, by in both.items()
        if by["anvil"] == "passed" and by["app"] != "passed"
    }
    unlisted = {test: how for test, how in gaps.items() if _test_name(test) not in APP_GAPS}
    assert not unlisted, "Anvil passes, the app does not:\n" + "\n".join(
        f"  {test}: {outcome} on the app" for test, outcome in sorted(unlisted.items())
    )


def _test_name(test_id: str) -> str:
    """'TestClass::test_name[params]' -> 'test_name'."""
    return test_id.rpartition("::")[2].partition("[")[0]
