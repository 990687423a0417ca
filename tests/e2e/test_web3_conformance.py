"""web3.py's own node conformance suite against an EVM app node on loopback.

`EthModuleTest`, `NetModuleTest` and `Web3ModuleTest` ship inside web3.py
(`web3._utils.module_testing`) and are what web3.py runs against geth. The fixtures below build
the chain state they expect the way web3.py's `tests/integration` fixtures do for geth: the
keyfile account 0xdC544d1A... (funded here by a transfer from a dev account), web3.py's six test
contracts from `web3._utils.contract_sources.contract_data`, a transaction with a log, an empty
block (our genesis: the node makes no empty blocks) and a mined value transfer. The app is the
`evm` template with chain id 131277322940537, which two tests hard-code.

The node holds the dev accounts' keys (eth_accounts and the suite's tests that read
w3.eth.accounts run), but not the keyfile account's, so the test client signs for it locally:
`SignAndSendRawMiddlewareBuilder` turns the suite's `eth_sendTransaction` from the keyfile
account into a locally signed `eth_sendRawTransaction`, as a dapp's wallet does. Tests that sign
with the keyfile account on the node, need a mempool window, or a feature we document as
absent are deselected; `DESELECTED` lists each one with its reason (tests/e2e/conftest.py drops
them at collection and pytest counts them).
"""

from __future__ import annotations

from collections.abc import Iterator
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
from services.launch import NodeProcess
from services.scaffold import scaffold

pytestmark = pytest.mark.e2e

CHAIN_ID = 131277322940537  # web3.py's geth fixture genesis; test_eth_chain_id and a raw send
KEYFILE_ACCOUNT_PKEY = "0x58d23b55bc9cdce1f18c2500f40ff4ab7245df9a89505e9b1fa4851f623d241d"
KEYFILE_ACCOUNT_ADDRESS = "0xdC544d1AA88Ff8bbd2F2AeC754B1F1e99e1812fd"
LOG_DOUBLE_WITH_INDEX = 9  # the emitter's LogFunctions enum, as web3.py's fixture calls it
RECEIPT_TIMEOUT = 30

_KEYFILE = "signs with web3.py's geth keyfile account, a key the node does not hold"
_MEMPOOL = (
    "needs a mempool window: eth_sendRawTransaction answers once the transaction's block is "
    "written (README: soft confirmations), so a sent transaction is never pending"
)

# name of the test in web3.py's suite (every parametrization) -> why it does not run here
DESELECTED: dict[str, str] = {
    # web3.py's geth keyfile account: geth's fixture imports and unlocks it; our node holds
    # only the dev accounts' keys, so it answers geth's own "unknown account" for it
    "test_eth_sign": _KEYFILE,
    "test_eth_sign_ens_names": _KEYFILE,
    "test_eth_sign_transaction_legacy": _KEYFILE,
    "test_eth_sign_transaction": _KEYFILE,
    "test_eth_sign_transaction_hex_fees": _KEYFILE,
    "test_eth_sign_transaction_ens_names": _KEYFILE,
    "test_eth_sign_typed_data": _KEYFILE,
    "test_invalid_eth_sign_typed_data": _KEYFILE,
    # a mempool window
    "test_eth_replace_transaction_legacy": _MEMPOOL,
    "test_eth_replace_transaction": _MEMPOOL,
    "test_eth_replace_transaction_underpriced": _MEMPOOL,
    "test_eth_replace_transaction_incorrect_nonce": _MEMPOOL,
    "test_eth_replace_transaction_gas_price_too_low": _MEMPOOL,
    "test_eth_replace_transaction_gas_price_defaulting_minimum": _MEMPOOL,
    "test_eth_replace_transaction_gas_price_defaulting_strategy_higher": _MEMPOOL,
    "test_eth_replace_transaction_gas_price_defaulting_strategy_lower": _MEMPOOL,
    "test_eth_modify_transaction_legacy": _MEMPOOL,
    "test_eth_modify_transaction": _MEMPOOL,
    "test_eth_get_transaction_receipt_unmined": _MEMPOOL,
    "test_eth_wait_for_transaction_receipt_unmined": _MEMPOOL,
    "test_gas_price_from_strategy_bypassed_for_dynamic_fee_txn": (
        "eth_sendTransaction from the keyfile account is signed locally, and web3.py's "
        "SignAndSendRawMiddleware fills the strategy's gasPrice into a dynamic-fee "
        "transaction and eth-account refuses to sign it (client side)"
    ),
    # features we document as absent (NOTES.md)
    "test_sign_authorization_send_raw_and_send_set_code_transactions": (
        "EIP-7702 set-code transactions are Prague; the app EVM runs Cancun"
    ),
    "test_eth_simulate_v1": "eth_simulateV1's traceTransfers is not implemented",
    # outside the node
    "test_eth_call_offchain_lookup_raises_when_all_supplied_urls_fail": (
        "sends real HTTPS requests to https://web3.py/gateway (tests stay on loopback)"
    ),
}


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


@pytest.fixture(scope="module")
def evm_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    app_dir = scaffold(tmp_path_factory.mktemp("web3suite") / "app", "evm", "web3suite", CHAIN_ID)
    with NodeProcess(app_dir, tmp_path_factory.mktemp("data")) as node:
        yield node


@pytest.fixture(scope="module")
def keyfile_account() -> LocalAccount:
    account: LocalAccount = Account.from_key(KEYFILE_ACCOUNT_PKEY)
    assert account.address == KEYFILE_ACCOUNT_ADDRESS
    return account


@pytest.fixture(scope="module")
def w3(evm_node: NodeProcess, keyfile_account: LocalAccount) -> Web3:
    client = Web3(Web3.HTTPProvider(evm_node.url, request_kwargs={"timeout": RECEIPT_TIMEOUT}))
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
    def _check_web3_client_version(self, client_version: str) -> None:  # type: ignore[override]
        assert client_version.startswith("app-rollup/")
