"""Every way a request can be wrong, against a running node: exact codes, HTTP 200 always.

JSON-RPC envelope errors (-32700, -32600, -32601), parameter errors (-32602), transaction-pool
rejections with geth's messages (-32000) and reverts (code 3 with the ABI data). A rejected
transaction changes nothing: the head, the sender's balance and nonce stay where they were and
the node does not know its hash. The last test checks the whole chain against a ledger of the
few transactions this module meant to mine.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import rlp
from eth_abi import decode as abi_decode
from eth_account import Account
from hexbytes import HexBytes
from web3 import Web3

pytestmark = pytest.mark.e2e

ETHER = 10**18
MiB = 1024 * 1024
MAX_BATCH = 2_000  # RpcLimits.max_batch
MAX_BODY = 5 * MiB  # RpcLimits.max_body_bytes (geth's limit)
MAX_QUEUED = 64  # Mempool.max_queued_per_sender
MAX_TX_GAS = 2**24  # EIP-7825: the most gas one transaction may carry
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
INSUFFICIENT_BALANCE = Web3.keccak(text="ERC20InsufficientBalance(address,uint256,uint256)")[:4]
INSUFFICIENT_ALLOWANCE = Web3.keccak(text="ERC20InsufficientAllowance(address,uint256,uint256)")[:4]


def hexstr(value: bytes) -> str:
    return HexBytes(value).to_0x_hex()


def request(method: str, params: Any = None, req_id: Any = 1) -> dict[str, Any]:
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": req_id, "method": method}
    if params is not None:
        body["params"] = params
    return body


def error_of(response: Any) -> dict[str, Any]:
    assert isinstance(response, dict), response
    assert "result" not in response, response
    assert response["jsonrpc"] == "2.0"
    return response["error"]


# ---- the ledger of what this module mines on purpose ------------------------------------------


class Ledger:
    """The chain as the module found it, and the transactions it meant to mine since."""

    def __init__(self, chain: Any, accounts: list[Any]) -> None:
        self.chain = chain
        self.addresses = [a.address for a in accounts]
        self.head = chain.head()
        self.balances = {a: chain.w3.eth.get_balance(a) for a in self.addresses}
        self.nonces = {a: chain.w3.eth.get_transaction_count(a) for a in self.addresses}
        self.mined: list[bytes] = []

    def mine(self, account: Any, **fields: Any) -> Any:
        receipt = self.chain.send(account, **fields)
        assert receipt.status == 1
        self.mined.append(receipt.transactionHash)
        return receipt

    def record(self, tx_hash: bytes) -> None:
        self.mined.append(HexBytes(tx_hash))


@pytest.fixture(scope="module", autouse=True)
def ledger(chain, dev_accounts) -> Ledger:
    return Ledger(chain, dev_accounts)


@pytest.fixture
def reject(chain):
    """Send a raw transaction that must be refused with -32000 and leave no trace."""

    def check(raw: bytes, prefix: str, sender: str | None = None, in_pool: bool = False) -> str:
        w3 = chain.w3
        head = chain.head()
        before = sender and (
            w3.eth.get_balance(sender),
            w3.eth.get_transaction_count(sender),
            w3.eth.get_transaction_count(sender, "pending"),
        )
        error = error_of(chain.request("eth_sendRawTransaction", hexstr(raw)))
        assert error["code"] == -32000, error
        assert error["message"].startswith(prefix), error
        assert "data" not in error
        assert chain.head() == head
        if sender:
            assert (
                w3.eth.get_balance(sender),
                w3.eth.get_transaction_count(sender),
                w3.eth.get_transaction_count(sender, "pending"),
            ) == before
        if not in_pool:
            assert chain.rpc("eth_getTransactionByHash", hexstr(Web3.keccak(raw))) is None
        return error["message"]

    return check


# ---- the JSON-RPC envelope ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b'{"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"',
        b"",
        b"not json at all",
        b"\xff\xfe\x00",
        b'[{"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"},',
    ],
    ids=["truncated", "empty", "text", "binary", "truncated-batch"],
)
def test_bad_json_is_a_parse_error(chain, body):
    response = chain.post(body)
    error = error_of(response)
    assert error["code"] == -32700
    assert response["id"] is None


@pytest.mark.parametrize(
    "body",
    [
        42,
        "eth_chainId",
        b"null",  # as bytes: httpx would send no body for json=None
        True,
        {"jsonrpc": "1.0", "id": 1, "method": "eth_chainId"},
        {"id": 1, "method": "eth_chainId"},
        {"jsonrpc": 2.0, "id": 1, "method": "eth_chainId"},
        {"jsonrpc": "2.0", "id": 1},
        {"jsonrpc": "2.0", "id": 1, "method": 7},
        {"jsonrpc": "2.0", "id": {"nested": 1}, "method": "eth_chainId"},
        {"jsonrpc": "2.0", "id": [1], "method": "eth_chainId"},
    ],
    ids=[
        "number",
        "string",
        "null",
        "bool",
        "jsonrpc-1.0",
        "no-jsonrpc",
        "jsonrpc-float",
        "no-method",
        "method-not-string",
        "id-object",
        "id-array",
    ],
)
def test_json_that_is_not_a_request_is_invalid_request(chain, body):
    error = error_of(chain.post(body))
    assert error["code"] == -32600


def test_invalid_entries_of_a_batch_are_answered_one_by_one(chain):
    responses = chain.post([1, request("eth_chainId", [], 9), {"jsonrpc": "2.0", "id": 3}])
    assert isinstance(responses, list) and len(responses) == 3
    errors = [r for r in responses if "error" in r]
    assert [e["error"]["code"] for e in errors] == [-32600, -32600]
    (ok,) = [r for r in responses if "result" in r]
    assert ok["id"] == 9 and ok["result"] == hex(chain.chain_id)


def test_empty_batch_is_one_invalid_request(chain):
    response = chain.post([])
    assert isinstance(response, dict)
    assert error_of(response)["code"] == -32600


def test_batch_over_the_limit_is_refused_whole_and_the_limit_itself_is_served(chain):
    too_many = chain.post([request("eth_chainId", [], i) for i in range(MAX_BATCH + 1)])
    assert isinstance(too_many, dict), "one error, not one per entry"
    error = error_of(too_many)
    assert error["code"] == -32600 and error["message"] == "batch too large"

    at_limit = chain.post([request("eth_blockNumber", [], i) for i in range(MAX_BATCH)])
    assert isinstance(at_limit, list) and len(at_limit) == MAX_BATCH
    assert sorted(r["id"] for r in at_limit) == list(range(MAX_BATCH))
    assert all("result" in r for r in at_limit)


def _big_body(size: int) -> bytes:
    head = b'{"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": ["'
    tail = b'"]}'
    return head + b"a" * (size - len(head) - len(tail)) + tail


def test_body_over_the_limit_is_invalid_request(chain):
    body = _big_body(MAX_BODY + 1)
    assert len(body) == MAX_BODY + 1
    # with a content-length header
    error = error_of(chain.post(body))
    assert error["code"] == -32600 and "too large" in error["message"]

    # streamed without one (chunked transfer encoding)
    def chunks():
        for start in range(0, len(body), MiB):
            yield body[start : start + MiB]

    response = chain.http.post(
        chain.url, content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 200
    assert "content-length" not in response.request.headers
    error = error_of(response.json())
    assert error["code"] == -32600 and "too large" in error["message"]
    # just under the limit is parsed (and then refused for its extra parameter)
    error = error_of(chain.post(_big_body(MAX_BODY)))
    assert error["code"] == -32602


@pytest.mark.parametrize("method", ["eth_noSuchMethod", "", "ETH_CHAINID", "debug_traceCall"])
def test_unknown_method(chain, method):
    error = error_of(chain.request(method))
    assert error["code"] == -32601
    assert method in error["message"]


# ---- parameters --------------------------------------------------------------------------------

ADDRESS = "0x" + "11" * 20


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("eth_getBalance", []),
        ("eth_getBalance", [ADDRESS, "latest", "extra"]),
        ("eth_getBalance", ["0x" + "zz" * 20, "latest"]),
        ("eth_getBalance", ["11" * 20, "latest"]),
        ("eth_getBalance", ["0x" + "11" * 19, "latest"]),
        ("eth_getBalance", ["0x" + "11" * 21, "latest"]),
        ("eth_getBalance", ["0x" + "1" * 39, "latest"]),
        ("eth_getBalance", [42, "latest"]),
        ("eth_getBalance", [ADDRESS, "latestt"]),
        ("eth_getBalance", [ADDRESS, "0xnothex"]),
        ("eth_getBalance", [ADDRESS, {"blockHash": "0x1234"}]),
        ("eth_getBalance", {"address": ADDRESS}),
        ("eth_getBalance", "0x" + "11" * 20),
        ("eth_getStorageAt", [ADDRESS, "0x" + "01" * 33, "latest"]),
        ("eth_getStorageAt", [ADDRESS, "0x", "latest"]),
        ("eth_getStorageAt", [ADDRESS, "0xgg", "latest"]),
        ("eth_getBlockByNumber", ["latest"]),
        ("eth_getBlockByNumber", ["latest", "yes"]),
        ("eth_getBlockByHash", ["0x1234", False]),
        ("eth_getTransactionByHash", ["0x" + "ab" * 31]),
        ("eth_call", ["not an object", "latest"]),
        ("eth_call", [{"to": ADDRESS, "data": "0x123"}, "latest"]),
        ("eth_call", [{"to": ADDRESS, "data": "0x12", "input": "0x34"}, "latest"]),
        ("eth_feeHistory", ["0x2", "latest", [90, 10]]),
        ("eth_getLogs", [{"topics": ["0x1234"]}]),
        ("eth_getLogs", [{"blockHash": "0x" + "00" * 32, "fromBlock": "0x0"}]),
        ("eth_sendRawTransaction", []),
        ("eth_sendRawTransaction", ["0x"]),
        ("eth_sendRawTransaction", ["0xzz"]),
        ("eth_sendRawTransaction", ["0x02", "0x02"]),
    ],
    ids=lambda value: str(value)[:40],
)
def test_bad_params(chain, method, params):
    head = chain.head()
    error = error_of(chain.post(request(method, params)))
    assert error["code"] == -32602, error
    assert chain.head() == head


# BUG (services/rpc/codec.py): `int(body, 16)` and `bytes.fromhex(body)` accept a sign, inner
# whitespace and underscores, so "0x-1", "0x 0", "0x0_0" and "0x11 11 ..." parse. A negative
# quantity then escapes as -32603 (OverflowError in parse_storage_slot, IndexError in
# eth_getTransactionByBlockNumberAndIndex), as -32000 "historical state for block -1", or as a
# wrong answer (index -1 is the block's last transaction; feeHistory of -1 blocks). geth rejects
# all of these with -32602.
@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("eth_getStorageAt", [ADDRESS, "0x-1", "latest"]),
        ("eth_getStorageAt", [ADDRESS, "0x 1", "latest"]),
        ("eth_getBalance", [ADDRESS, "0x-1"]),
        ("eth_getBalance", [ADDRESS, "0x 0"]),
        ("eth_getBalance", [ADDRESS, "0x0_0"]),
        ("eth_getBalance", ["0x" + "11 " * 20, "latest"]),
        ("eth_getBlockByNumber", ["0x-1", False]),
        ("eth_getTransactionByBlockNumberAndIndex", ["latest", "0x-1"]),
        ("eth_feeHistory", ["0x-1", "latest"]),
        ("eth_call", [{"to": ADDRESS, "gas": "0x-5"}, "latest"]),
        ("eth_call", [{"to": ADDRESS, "data": "0x12 34 "}, "latest"]),
    ],
    ids=[
        "slot-negative",
        "slot-space",
        "block-negative",
        "block-space",
        "block-underscore",
        "address-spaces",
        "block-by-number-negative",
        "tx-index-negative",
        "fee-history-negative-count",
        "call-negative-gas",
        "call-data-spaces",
    ],
)
def test_hex_with_a_sign_or_whitespace_is_invalid_params(chain, method, params):
    error = error_of(chain.post(request(method, params)))
    assert error["code"] == -32602, error


# ---- transaction-pool rejections ---------------------------------------------------------------


def test_undecodable_transactions(chain, reject, dev_accounts):
    assert reject(bytes.fromhex("deadbeef"), "rlp")
    assert reject(bytes.fromhex("c0"), "rlp")
    assert reject(bytes.fromhex("02deadbeef"), "rlp")
    assert reject(bytes.fromhex("05aa"), "transaction type not supported")
    good = chain.sign(dev_accounts[4], to=ADDRESS, value=1, nonce=0)
    reject(bytes(good) + b"\x00", "rlp", dev_accounts[4].address)  # trailing bytes
    reject(bytes(good)[:-1], "rlp", dev_accounts[4].address)  # truncated


def test_oversized_transaction(chain, reject, dev_accounts):
    sender = dev_accounts[4]
    raw = chain.sign(sender, to=ADDRESS, nonce=0, gas=3_000_000, data=b"\x01" * (130 * 1024))
    reject(raw, "oversized data", sender.address)


def test_wrong_chain_id_is_invalid_sender(chain, reject, dev_accounts):
    sender = dev_accounts[4]
    for fields in (
        {"chainId": 1},
        {"chainId": 1, "gasPrice": 2 * chain.gwei},
        {"chainId": chain.chain_id + 1},
    ):
        raw = chain.sign(sender, to=ADDRESS, value=1, nonce=0, **fields)
        message = reject(raw, "invalid sender", sender.address)
        assert "chain id" in message


def _with_s(raw: bytes, new_s: int) -> bytes:
    fields = rlp.decode(raw[1:])
    fields[-1] = new_s.to_bytes((new_s.bit_length() + 7) // 8, "big")  # canonical RLP
    return raw[:1] + rlp.encode(fields)


def test_tampered_signature_is_invalid_sender(chain, reject, dev_accounts):
    sender = dev_accounts[4]
    raw = chain.sign(sender, to=ADDRESS, value=1, nonce=0)
    s = int.from_bytes(rlp.decode(raw[1:])[-1], "big")
    flipped = bytearray(s.to_bytes(32, "big"))
    flipped[0] ^= 0xFF  # s now has its top bit set: above n/2 (EIP-2), maybe above n
    reject(_with_s(raw, int.from_bytes(flipped, "big")), "invalid sender", sender.address)
    reject(_with_s(raw, SECP256K1_N - s), "invalid sender", sender.address)  # high-s twin
    reject(_with_s(raw, 0), "invalid sender", sender.address)
    reject(_with_s(raw, SECP256K1_N), "invalid sender", sender.address)


def test_pre_eip155_legacy_transaction_is_refused(chain, reject, dev_accounts):
    sender = dev_accounts[4]
    unsigned = [0, 2 * chain.gwei, 21_000, bytes.fromhex(ADDRESS[2:]), 1, b""]
    signed = Account.unsafe_sign_hash(Web3.keccak(rlp.encode(unsigned)), sender.key)
    assert signed.v in (27, 28)
    raw = rlp.encode([*unsigned, signed.v, signed.r, signed.s])
    reject(raw, "only replay-protected (EIP-155) transactions allowed over RPC", sender.address)


def test_nonce_too_low(chain, reject, ledger, dev_accounts):
    sender = dev_accounts[1]
    nonce = chain.w3.eth.get_transaction_count(sender.address)
    mined = chain.sign(sender, to=ADDRESS, value=1, nonce=nonce)
    ledger.record(chain.send_raw(mined))
    assert chain.rpc("eth_getTransactionReceipt", hexstr(Web3.keccak(mined)))["status"] == "0x1"

    again = chain.sign(sender, to=ADDRESS, value=2, nonce=nonce)
    message = reject(again, "nonce too low", sender.address)
    assert f"tx: {nonce} state: {nonce + 1}" in message
    # the very same bytes again: the nonce is used, whatever the pool remembers
    error = error_of(chain.request("eth_sendRawTransaction", hexstr(mined)))
    assert error["code"] == -32000 and error["message"].startswith("nonce too low")


def test_nonce_too_high_after_64_queued_future_nonces(chain, reject, dev_accounts):
    sender = dev_accounts[2]  # its gap is never filled: these stay queued for the module
    nonce = chain.w3.eth.get_transaction_count(sender.address)
    head = chain.head()
    queued = [
        chain.sign(sender, to=ADDRESS, value=1, nonce=nonce + i) for i in range(1, MAX_QUEUED + 1)
    ]
    answers = chain.post(
        [request("eth_sendRawTransaction", [hexstr(raw)], i) for i, raw in enumerate(queued)]
    )
    assert sorted((a["id"], a.get("result")) for a in answers) == [
        (i, hexstr(Web3.keccak(raw))) for i, raw in enumerate(queued)
    ]
    assert chain.head() == head
    assert chain.w3.eth.get_transaction_count(sender.address, "pending") == nonce

    one_more = chain.sign(sender, to=ADDRESS, value=1, nonce=nonce + MAX_QUEUED + 1)
    reject(one_more, "nonce too high", sender.address)
    for raw in queued[:3]:  # still waiting, not mined
        tx = chain.rpc("eth_getTransactionByHash", hexstr(Web3.keccak(raw)))
        assert tx is not None and tx["blockNumber"] is None


def test_insufficient_funds(chain, reject, dev_accounts):
    broke = chain.fresh_account(0)
    raw = chain.sign(broke, to=ADDRESS, value=0, nonce=0)
    reject(raw, "insufficient funds for gas * price + value", broke.address)
    rich = dev_accounts[4]
    balance = chain.w3.eth.get_balance(rich.address)
    raw = chain.sign(rich, to=ADDRESS, value=balance, nonce=0)  # value fits, the gas does not
    reject(raw, "insufficient funds for gas * price + value", rich.address)


def test_static_checks_with_geths_words(chain, reject, dev_accounts):
    sender = dev_accounts[4]
    sign = chain.sign
    gwei, to = chain.gwei, ADDRESS
    cases = [
        (sign(sender, to=to, nonce=0, gas=20_999), "intrinsic gas too low"),
        (sign(sender, to=to, nonce=0, gas=21_000, data="0x01"), "intrinsic gas too low"),
        (
            sign(sender, to=to, nonce=0, maxFeePerGas=chain.base_fee - 1, maxPriorityFeePerGas=0),
            "max fee per gas less than block base fee",
        ),
        (
            sign(sender, to=to, nonce=0, gasPrice=chain.base_fee - 1),
            "max fee per gas less than block base fee",
        ),
        (
            sign(sender, to=to, nonce=0, maxFeePerGas=2 * gwei, maxPriorityFeePerGas=3 * gwei),
            "max priority fee per gas higher than max fee per gas",
        ),
        (sign(sender, to=to, nonce=0, gas=chain.gas_limit + 1), "exceeds block gas limit"),
        (sign(sender, to=to, nonce=0, gas=MAX_TX_GAS + 1), "transaction gas limit too high"),
    ]
    for raw, prefix in cases:
        reject(raw, prefix, sender.address)


def test_the_boundaries_themselves_are_accepted(chain, ledger, dev_accounts):
    """Positive controls for the checks above: exactly at each limit is fine."""
    sender = dev_accounts[7]
    receipt = ledger.mine(sender, to=ADDRESS, gas=MAX_TX_GAS)  # the most one may carry
    assert receipt.gasUsed == 21_000
    ledger.mine(sender, to=ADDRESS, maxFeePerGas=chain.base_fee, maxPriorityFeePerGas=0)
    ledger.mine(
        sender, to=ADDRESS, maxFeePerGas=2 * chain.gwei, maxPriorityFeePerGas=2 * chain.gwei
    )
    ledger.mine(sender, to=ADDRESS, gasPrice=chain.base_fee)


def test_contract_creation_is_refused(chain, reject, dev_accounts):
    sender = dev_accounts[4]
    raw = chain.sign(sender, nonce=0, gas=100_000, data="0x6000600055")
    message = reject(raw, "", sender.address)
    assert "contract creation" in message


def test_same_transaction_twice_while_queued(chain, reject, dev_accounts):
    sender = dev_accounts[3]
    nonce = chain.w3.eth.get_transaction_count(sender.address) + 5  # a gap: it stays queued
    raw = chain.sign(sender, to=ADDRESS, value=1, nonce=nonce)
    assert chain.rpc("eth_sendRawTransaction", hexstr(raw)) == hexstr(Web3.keccak(raw))
    reject(raw, "already known", sender.address, in_pool=True)

    cheap = chain.sign(sender, to=ADDRESS, value=2, nonce=nonce)  # same fees, other content
    reject(cheap, "replacement transaction underpriced", sender.address)
    bumped = chain.sign(
        sender,
        to=ADDRESS,
        value=2,
        nonce=nonce,
        maxFeePerGas=3 * chain.gwei,
        maxPriorityFeePerGas=2 * chain.gwei,
    )
    assert chain.rpc("eth_sendRawTransaction", hexstr(bumped)) == hexstr(Web3.keccak(bumped))
    assert chain.rpc("eth_getTransactionByHash", hexstr(Web3.keccak(raw))) is None  # replaced
    assert chain.rpc("eth_getTransactionByHash", hexstr(Web3.keccak(bumped))) is not None


def test_batch_answers_each_send_on_its_own(chain, ledger, dev_accounts):
    sender = dev_accounts[5]
    nonce = chain.w3.eth.get_transaction_count(sender.address)
    good = chain.sign(sender, to=ADDRESS, value=3, nonce=nonce)
    batch = [
        request("eth_sendRawTransaction", [hexstr(good)], "good"),
        request("eth_sendRawTransaction", [hexstr(good)], "twice"),
        request("eth_sendRawTransaction", ["0xdeadbeef"], "garbage"),
        request("eth_blockNumber", [], "head"),
        {"jsonrpc": "2.0", "method": "eth_chainId", "params": []},  # a notification
    ]
    responses = {r["id"]: r for r in chain.post(batch)}
    assert set(responses) == {"good", "twice", "garbage", "head"}
    assert responses["good"]["result"] == hexstr(Web3.keccak(good))
    ledger.record(Web3.keccak(good))
    assert error_of(responses["twice"]) == {"code": -32000, "message": "already known"}
    garbage = error_of(responses["garbage"])
    assert garbage["code"] == -32000 and garbage["message"].startswith("rlp")
    receipt = chain.rpc("eth_getTransactionReceipt", hexstr(Web3.keccak(good)))
    assert receipt is not None and receipt["status"] == "0x1"


# ---- reverts -----------------------------------------------------------------------------------


def test_eth_call_revert_is_code_3_with_the_abi_error(chain, token, dev_accounts):
    poor, owner = dev_accounts[8], dev_accounts[0]
    assert token.functions.balanceOf(poor.address).call() == 0
    call = {
        "from": poor.address,
        "to": token.address,
        "data": token.encode_abi("transfer", [owner.address, 1]),
    }
    for method in ("eth_call", "eth_estimateGas"):
        error = error_of(chain.request(method, call, "latest"))
        assert error["code"] == 3, error
        assert error["message"].startswith("execution reverted")
        data = HexBytes(error["data"])
        assert error["data"] == hexstr(data)  # 0x-prefixed lowercase hex
        assert data[:4] == INSUFFICIENT_BALANCE
        assert abi_decode(["address", "uint256", "uint256"], data[4:]) == (
            poor.address.lower(),
            0,
            1,
        )

    call["data"] = token.encode_abi("transferFrom", [owner.address, poor.address, 5])
    error = error_of(chain.request("eth_call", call, "latest"))
    assert error["code"] == 3
    data = HexBytes(error["data"])
    assert data[:4] == INSUFFICIENT_ALLOWANCE
    assert abi_decode(["address", "uint256", "uint256"], data[4:]) == (poor.address.lower(), 0, 5)


# ---- and after all that ------------------------------------------------------------------------


def test_rejections_left_the_chain_untouched_and_the_node_serving(chain, ledger):
    w3 = chain.w3
    blocks = set()
    balances, nonces = dict(ledger.balances), Counter(ledger.nonces)
    for tx_hash in ledger.mined:
        receipt = w3.eth.get_transaction_receipt(tx_hash)
        tx = w3.eth.get_transaction(tx_hash)
        assert receipt.status == 1
        blocks.add(receipt.blockNumber)
        balances[tx["from"]] -= tx.value + receipt.gasUsed * receipt.effectiveGasPrice
        if tx.to in balances:
            balances[tx.to] += tx.value
        nonces[tx["from"]] += 1
    # every state change made exactly one block, and nothing else made any
    assert chain.head() == ledger.head + len(blocks) == ledger.head + len(ledger.mined)
    for address in ledger.addresses:
        assert w3.eth.get_balance(address) == balances[address], address
        assert w3.eth.get_transaction_count(address) == nonces[address], address
    # still serving, reads and writes
    assert chain.rpc("eth_blockNumber") == hex(chain.head())
    assert chain.rpc("eth_chainId") == hex(chain.chain_id)
    health = chain.http.get(chain.url + "health")
    assert health.status_code == 200 and health.json()["head"] == chain.head()
