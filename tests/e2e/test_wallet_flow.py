"""A wallet's whole life against a real node process, through web3.py 7 and eth-account.

Sends of every transaction type, balances and fees, the token app as an ERC-20 contract
(calls, build_transaction with the node's gas estimate, events, logs, reverts with custom
errors, raw storage), blocks and nonces as MetaMask reads them, batches, and restarts after
SIGTERM and SIGKILL.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import pytest
from eth_abi import decode as abi_decode
from eth_account import Account
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import ContractCustomError, ContractLogicError, TransactionNotFound

from services.rpcclient import RpcCallError, RpcClient, RpcUnavailable
from services.waiting import WaitTimeout, wait_until

pytestmark = pytest.mark.e2e

ETHER = 10**18
TRANSFER_TOPIC = Web3.keccak(text="Transfer(address,address,uint256)")
APPROVAL_TOPIC = Web3.keccak(text="Approval(address,address,uint256)")
INSUFFICIENT_BALANCE = Web3.keccak(text="ERC20InsufficientBalance(address,uint256,uint256)")[:4]


def hexstr(value: bytes) -> str:
    return HexBytes(value).to_0x_hex()


def topic_of(address: str) -> str:
    """An indexed address as a log topic: left-padded to 32 bytes."""
    return "0x" + "00" * 12 + address[2:].lower()


def raw_result(w3: Web3, method: str, *params: Any) -> Any:
    """The result exactly as the node sent it, before web3's formatters."""
    response = w3.provider.make_request(method, list(params))  # type: ignore[arg-type]
    assert "error" not in response, response
    return response["result"]


def token_transfer(chain: Any, sender: Any, to: str, amount: int, **overrides: Any) -> Any:
    """transfer() built by web3 (gas estimated by the node unless given), signed and mined."""
    params = {
        "from": sender.address,
        "chainId": chain.chain_id,
        "nonce": chain.w3.eth.get_transaction_count(sender.address, "pending"),
    }
    tx = chain.token.functions.transfer(to, amount).build_transaction(params | overrides)
    return chain.wait(chain.send_raw(sender.sign_transaction(tx).raw_transaction))


def test_what_metamask_asks_when_adding_the_network(chain, w3):
    assert raw_result(w3, "eth_chainId") == hex(chain.chain_id) == "0xdbf89"  # minimal, lower
    assert w3.eth.chain_id == chain.chain_id
    assert raw_result(w3, "net_version") == str(chain.chain_id)
    latest = raw_result(w3, "eth_getBlockByNumber", "latest", False)
    assert latest["baseFeePerGas"] == hex(chain.base_fee)  # EIP-1559 network
    assert raw_result(w3, "eth_syncing") is False
    assert len(raw_result(w3, "eth_accounts")) == 10  # the dev accounts, unlocked on a devnet
    assert raw_result(w3, "web3_clientVersion")


# ---- native transfers of every type ------------------------------------------------------------


def test_eip1559_transfer_moves_value_and_charges_gas_used_times_effective_price(chain, w3):
    sender, receiver = chain.fresh_account(10), Account.create().address
    before = w3.eth.get_balance(sender.address)
    value = 123_456_789
    receipt = chain.send(
        sender,
        to=receiver,
        value=value,
        maxFeePerGas=5 * chain.gwei,
        maxPriorityFeePerGas=2 * chain.gwei,
    )

    assert receipt.status == 1 and receipt.type == 2
    raw = raw_result(w3, "eth_getTransactionReceipt", hexstr(receipt.transactionHash))
    assert raw["status"] == "0x1" and raw["type"] == "0x2"
    assert receipt.gasUsed == 21_000
    assert receipt.effectiveGasPrice == chain.base_fee + 2 * chain.gwei  # tip fits under the cap
    fee = receipt.gasUsed * receipt.effectiveGasPrice
    assert w3.eth.get_balance(sender.address) == before - value - fee
    assert w3.eth.get_balance(receiver) == value

    # MetaMask asks at explicit block numbers: the parent block still has the old balances,
    # and the fee went to the block's coinbase (the app's fee vault).
    number = receipt.blockNumber
    assert w3.eth.get_balance(sender.address, number - 1) == before
    assert w3.eth.get_balance(receiver, number - 1) == 0
    miner = w3.eth.get_block(number).miner
    assert w3.eth.get_balance(miner, number) - w3.eth.get_balance(miner, number - 1) == fee


def test_legacy_eip155_transfer(chain, w3):
    sender, receiver = chain.fresh_account(10), Account.create().address
    before = w3.eth.get_balance(sender.address)
    price = 3 * chain.gwei
    receipt = chain.send(sender, to=receiver, value=ETHER, gasPrice=price)

    assert receipt.status == 1 and receipt.type == 0
    assert (
        raw_result(w3, "eth_getTransactionReceipt", hexstr(receipt.transactionHash))["status"]
        == "0x1"
    )
    assert receipt.effectiveGasPrice == price
    tx = raw_result(w3, "eth_getTransactionByHash", hexstr(receipt.transactionHash))
    assert tx["type"] == "0x0"
    assert int(tx["v"], 16) in (chain.chain_id * 2 + 35, chain.chain_id * 2 + 36)
    assert tx["gasPrice"] == hex(price)
    assert w3.eth.get_balance(sender.address) == before - ETHER - 21_000 * price
    assert w3.eth.get_balance(receiver) == ETHER


def test_eip2930_transfer_with_access_list(chain, w3):
    sender, receiver = chain.fresh_account(10), Account.create().address
    before = w3.eth.get_balance(sender.address)
    access_list = [{"address": receiver, "storageKeys": ["0x" + "00" * 31 + "01"]}]
    price = 2 * chain.gwei
    receipt = chain.send(
        sender, to=receiver, value=7, gasPrice=price, gas=40_000, accessList=access_list
    )

    assert receipt.status == 1 and receipt.type == 1
    assert receipt.gasUsed == 21_000 + 2_400 + 1_900  # one address, one key
    tx = raw_result(w3, "eth_getTransactionByHash", hexstr(receipt.transactionHash))
    assert tx["type"] == "0x1"
    assert tx["accessList"] == [
        {"address": receiver.lower(), "storageKeys": access_list[0]["storageKeys"]}
    ]
    # Unused gas is refunded: only gasUsed is paid.
    assert w3.eth.get_balance(sender.address) == before - 7 - receipt.gasUsed * price
    assert w3.eth.get_balance(receiver) == 7


# ---- the token app as an ERC-20 ----------------------------------------------------------------


def test_token_metadata_and_code(chain, w3, token, dev_accounts):
    assert token.functions.name().call() == "Example Token"
    assert token.functions.symbol().call() == "EXT"
    assert token.functions.decimals().call() == 18
    assert token.functions.totalSupply().call() == chain.token_supply
    assert token.functions.totalSupply().call(block_identifier=0) == chain.token_supply
    assert token.functions.balanceOf(dev_accounts[0].address).call(block_identifier=0) == (
        chain.token_supply
    )
    assert token.functions.balanceOf(Account.create().address).call() == 0
    # Wallets decide "contract or plain send" by eth_getCode: it must not be empty.
    assert len(w3.eth.get_code(token.address)) > 0
    assert raw_result(w3, "eth_getCode", token.address, "latest") != "0x"
    assert raw_result(w3, "eth_getCode", Account.create().address, "latest") == "0x"


def test_token_transfer_with_gas_estimated_by_the_node(chain, w3, token, dev_accounts):
    owner, recipient = dev_accounts[0], Account.create().address
    owner_before = token.functions.balanceOf(owner.address).call()
    amount = 5 * ETHER
    estimate = token.functions.transfer(recipient, amount).estimate_gas({"from": owner.address})
    tx = token.functions.transfer(recipient, amount).build_transaction(
        {
            "from": owner.address,
            "chainId": chain.chain_id,
            "nonce": w3.eth.get_transaction_count(owner.address),
        }
    )
    assert tx["gas"] == estimate > 21_000
    assert tx["maxFeePerGas"] >= chain.base_fee
    receipt = chain.wait(chain.send_raw(owner.sign_transaction(tx).raw_transaction))

    assert receipt.status == 1
    assert receipt.gasUsed == estimate  # same pre-state, same execution
    assert token.functions.balanceOf(recipient).call() == amount
    assert token.functions.balanceOf(owner.address).call() == owner_before - amount
    events = token.events.Transfer().process_receipt(receipt)
    assert len(events) == 1
    assert events[0].args == {"from": owner.address, "to": recipient, "value": amount}
    assert events[0].address == token.address
    assert events[0].blockNumber == receipt.blockNumber
    assert events[0].transactionHash == receipt.transactionHash
    log = receipt.logs[0]
    assert log.topics == [
        TRANSFER_TOPIC,
        HexBytes(topic_of(owner.address)),
        HexBytes(topic_of(recipient)),
    ]
    assert int.from_bytes(log.data, "big") == amount


def test_approve_then_transfer_from_by_another_account(chain, w3, token, dev_accounts):
    owner, spender = dev_accounts[0], chain.fresh_account(1)
    recipient = Account.create().address
    allowance, moved = 50 * ETHER, 20 * ETHER
    owner_before = token.functions.balanceOf(owner.address).call()

    tx = token.functions.approve(spender.address, allowance).build_transaction(
        {
            "from": owner.address,
            "chainId": chain.chain_id,
            "nonce": w3.eth.get_transaction_count(owner.address),
        }
    )
    approved = chain.wait(chain.send_raw(owner.sign_transaction(tx).raw_transaction))
    assert approved.status == 1
    (approval,) = token.events.Approval().process_receipt(approved)
    assert approval.args == {"owner": owner.address, "spender": spender.address, "value": allowance}
    assert token.functions.allowance(owner.address, spender.address).call() == allowance

    tx = token.functions.transferFrom(owner.address, recipient, moved).build_transaction(
        {
            "from": spender.address,
            "chainId": chain.chain_id,
            "nonce": w3.eth.get_transaction_count(spender.address),
        }
    )
    moved_receipt = chain.wait(chain.send_raw(spender.sign_transaction(tx).raw_transaction))
    assert moved_receipt.status == 1
    assert moved_receipt["from"] == spender.address
    (transfer,) = token.events.Transfer().process_receipt(moved_receipt)
    assert transfer.args == {"from": owner.address, "to": recipient, "value": moved}
    assert token.functions.allowance(owner.address, spender.address).call() == allowance - moved
    assert token.functions.balanceOf(recipient).call() == moved
    assert token.functions.balanceOf(owner.address).call() == owner_before - moved
    assert token.functions.balanceOf(spender.address).call() == 0

    # eth_getLogs with topic filters, as dapps (and MetaMask's filter emulation) use it.
    first, last = approved.blockNumber, moved_receipt.blockNumber
    span = {"fromBlock": first, "toBlock": last, "address": token.address}
    to_recipient = w3.eth.get_logs(span | {"topics": [TRANSFER_TOPIC, None, topic_of(recipient)]})
    assert [entry.transactionHash for entry in to_recipient] == [moved_receipt.transactionHash]
    approvals = w3.eth.get_logs(span | {"topics": [APPROVAL_TOPIC, topic_of(owner.address)]})
    assert [entry.transactionHash for entry in approvals] == [approved.transactionHash]
    either = w3.eth.get_logs(
        span | {"topics": [[TRANSFER_TOPIC, APPROVAL_TOPIC], topic_of(owner.address)]}
    )
    assert [e.transactionHash for e in either] == [
        approved.transactionHash,
        moved_receipt.transactionHash,
    ]
    nobody = w3.eth.get_logs(span | {"topics": [TRANSFER_TOPIC, topic_of(recipient)]})
    assert nobody == []
    by_block_hash = w3.eth.get_logs(
        {"blockHash": moved_receipt.blockHash, "address": token.address}
    )
    assert len(by_block_hash) == 1 and by_block_hash[0].logIndex == 0
    # and through web3's contract event API
    decoded = token.events.Transfer().get_logs(
        argument_filters={"to": recipient}, from_block=first, to_block="latest"
    )
    assert [event.args.value for event in decoded] == [moved]


def test_transfer_beyond_balance_reverts_with_custom_error_and_changes_nothing(
    chain, w3, token, dev_accounts
):
    poor = chain.fresh_account(1)
    assert token_transfer(chain, dev_accounts[0], poor.address, 5).status == 1
    other = Account.create().address
    call = token.functions.transfer(other, 6)

    with pytest.raises(ContractCustomError) as caught:
        call.call({"from": poor.address})
    assert isinstance(caught.value, ContractLogicError)
    data = HexBytes(caught.value.data)
    assert data[:4] == INSUFFICIENT_BALANCE
    assert abi_decode(["address", "uint256", "uint256"], data[4:]) == (poor.address.lower(), 5, 6)
    with pytest.raises(ContractCustomError):
        call.estimate_gas({"from": poor.address})

    eth_before = w3.eth.get_balance(poor.address)
    nonce_before = w3.eth.get_transaction_count(poor.address)
    receipt = token_transfer(chain, poor, other, 6, gas=200_000)  # no estimate: it would revert

    assert receipt.status == 0
    raw = raw_result(w3, "eth_getTransactionReceipt", hexstr(receipt.transactionHash))
    assert raw["status"] == "0x0"
    assert raw["logs"] == [] and receipt.logs == []
    assert token.functions.balanceOf(poor.address).call() == 5
    assert token.functions.balanceOf(other).call() == 0
    # a failed transaction still pays for its gas and uses its nonce
    assert w3.eth.get_balance(poor.address) == (
        eth_before - receipt.gasUsed * receipt.effectiveGasPrice
    )
    assert w3.eth.get_transaction_count(poor.address) == nonce_before + 1


def test_storage_at_reads_the_balances_mapping_like_solidity(chain, w3, token, dev_accounts):
    holder = Account.create().address
    receipt = token_transfer(chain, dev_accounts[0], holder, 777)
    assert receipt.status == 1

    def slot_of(address: str) -> int:
        key = bytes(12) + bytes.fromhex(address[2:]) + chain.balances_slot.to_bytes(32, "big")
        return int.from_bytes(Web3.keccak(key), "big")

    for address in (holder, dev_accounts[0].address):
        word = w3.eth.get_storage_at(token.address, slot_of(address))
        assert len(word) == 32
        assert int.from_bytes(word, "big") == token.functions.balanceOf(address).call()
    assert int.from_bytes(w3.eth.get_storage_at(token.address, slot_of(holder)), "big") == 777
    before = receipt.blockNumber - 1
    assert w3.eth.get_storage_at(token.address, slot_of(holder), before) == bytes(32)
    # slot 2 is `supply`, a plain word
    assert int.from_bytes(w3.eth.get_storage_at(token.address, 2), "big") == chain.token_supply
    raw = raw_result(w3, "eth_getStorageAt", token.address, hex(slot_of(holder)), "latest")
    assert raw == "0x" + (777).to_bytes(32, "big").hex()


# ---- blocks, transactions, nonces ----------------------------------------------------------


def test_each_transaction_makes_a_new_block_and_blocks_are_consistent(chain, w3):
    sender = chain.fresh_account(1)
    first = chain.send(sender, to=Account.create().address, value=1)
    second = chain.send(sender, to=Account.create().address, value=2)
    assert second.blockNumber == first.blockNumber + 1
    assert w3.eth.block_number >= second.blockNumber

    block = w3.eth.get_block(first.blockNumber)
    assert block.hash == first.blockHash
    assert w3.eth.get_block(block.hash) == block
    assert block.transactions == [first.transactionHash]
    assert block.baseFeePerGas == chain.base_fee
    assert block.gasUsed == first.gasUsed
    assert block.gasLimit == chain.gas_limit
    nxt = w3.eth.get_block(second.blockNumber, full_transactions=True)
    assert nxt.parentHash == block.hash
    assert nxt.timestamp >= block.timestamp
    assert [tx.hash for tx in nxt.transactions] == [second.transactionHash]
    assert nxt.transactions[0].blockHash == nxt.hash

    raw = raw_result(w3, "eth_getBlockByNumber", hex(first.blockNumber), False)
    assert raw == raw_result(w3, "eth_getBlockByHash", hexstr(block.hash), False)
    assert raw["baseFeePerGas"] == hex(chain.base_fee)
    assert raw["number"] == hex(first.blockNumber)
    latest = raw_result(w3, "eth_getBlockByNumber", "latest", False)
    assert "baseFeePerGas" in latest
    assert raw_result(w3, "eth_getBlockByNumber", hex(w3.eth.block_number + 1000), False) is None
    assert raw_result(w3, "eth_getBlockByHash", "0x" + "ab" * 32, False) is None


def test_a_batch_of_sends_lands_in_one_block_with_block_wide_log_indexes(
    chain, w3, token, dev_accounts
):
    owner = dev_accounts[0]
    nonce = w3.eth.get_transaction_count(owner.address)
    recipients = [Account.create().address for _ in range(3)]
    raws = []
    for i, recipient in enumerate(recipients):
        tx = token.functions.transfer(recipient, 10 + i).build_transaction(
            {"from": owner.address, "chainId": chain.chain_id, "nonce": nonce + i, "gas": 200_000}
        )
        raws.append(owner.sign_transaction(tx).raw_transaction)
    batch = [
        {"jsonrpc": "2.0", "id": i, "method": "eth_sendRawTransaction", "params": [hexstr(raw)]}
        for i, raw in enumerate(raws)
    ]
    answers = sorted(chain.post(batch), key=lambda a: a["id"])
    hashes = [HexBytes(a["result"]) for a in answers]
    assert hashes == [Web3.keccak(raw) for raw in raws]

    receipts = [w3.eth.get_transaction_receipt(h) for h in hashes]
    number = receipts[0].blockNumber
    assert [r.blockNumber for r in receipts] == [number] * 3  # all ready at once: one block
    assert [r.transactionIndex for r in receipts] == [0, 1, 2]
    cumulative = 0
    for receipt in receipts:
        cumulative += receipt.gasUsed
        assert receipt.cumulativeGasUsed == cumulative
    block = w3.eth.get_block(number)
    assert block.transactions == hashes and block.gasUsed == cumulative
    assert [r.logs[0].logIndex for r in receipts] == [0, 1, 2]
    logs = w3.eth.get_logs({"blockHash": block.hash})
    assert [(entry.transactionIndex, entry.logIndex) for entry in logs] == [(0, 0), (1, 1), (2, 2)]
    assert raw_result(w3, "eth_getBlockReceipts", hex(number)) == [
        raw_result(w3, "eth_getTransactionReceipt", hexstr(h)) for h in hashes
    ]
    assert raw_result(w3, "eth_getBlockTransactionCountByHash", hexstr(block.hash)) == "0x3"
    second = raw_result(w3, "eth_getTransactionByBlockNumberAndIndex", hex(number), "0x1")
    assert second["hash"] == hexstr(hashes[1]) and second["transactionIndex"] == "0x1"
    assert [token.functions.balanceOf(r).call() for r in recipients] == [10, 11, 12]


def test_get_transaction_by_hash_of_a_mined_transaction(chain, w3):
    sender, receiver = chain.fresh_account(1), Account.create().address
    nonce = w3.eth.get_transaction_count(sender.address)
    raw_tx = chain.sign(sender, to=receiver, value=42, nonce=nonce)
    tx_hash = chain.send_raw(raw_tx)
    assert tx_hash == Web3.keccak(raw_tx)  # ethers refuses any other hash
    # the send returned once the block was durable: the receipt is already there
    receipt = w3.eth.get_transaction_receipt(tx_hash)

    tx = w3.eth.get_transaction(tx_hash)
    assert tx.hash == tx_hash
    assert tx["from"] == sender.address and tx.to == receiver
    assert tx.value == 42 and tx.nonce == nonce and tx.type == 2
    assert tx.blockNumber == receipt.blockNumber and tx.blockHash == receipt.blockHash
    assert tx.transactionIndex == 0
    assert tx.chainId == chain.chain_id
    assert tx.maxFeePerGas == 2 * chain.gwei and tx.maxPriorityFeePerGas == chain.gwei
    assert raw_result(w3, "eth_getRawTransactionByHash", hexstr(tx_hash)) == hexstr(raw_tx)
    with pytest.raises(TransactionNotFound):
        w3.eth.get_transaction("0x" + "cd" * 32)


def test_future_nonce_waits_in_the_pool_until_the_gap_fills(chain, w3):
    sender = chain.fresh_account(1)
    nonce = w3.eth.get_transaction_count(sender.address)
    head = w3.eth.block_number

    later = chain.sign(sender, to=Account.create().address, value=2, nonce=nonce + 1)
    later_hash = chain.send_raw(later)  # answered at once: nothing to wait for
    assert later_hash == Web3.keccak(later)
    assert raw_result(w3, "eth_getTransactionReceipt", hexstr(later_hash)) is None
    with pytest.raises(TransactionNotFound):
        w3.eth.get_transaction_receipt(later_hash)
    pending = raw_result(w3, "eth_getTransactionByHash", hexstr(later_hash))
    assert pending["blockNumber"] is None and pending["nonce"] == hex(nonce + 1)
    # the gap is not counted: pending stays at the next executable nonce, as in geth
    assert w3.eth.get_transaction_count(sender.address, "latest") == nonce
    assert w3.eth.get_transaction_count(sender.address, "pending") == nonce
    assert w3.eth.block_number == head  # nothing executable: no block

    first = chain.send(sender, to=Account.create().address, value=1, nonce=nonce)
    second = chain.wait(later_hash)
    assert first.status == second.status == 1
    assert second.blockNumber >= first.blockNumber
    assert w3.eth.get_transaction_count(sender.address, "latest") == nonce + 2
    assert w3.eth.get_transaction_count(sender.address, "pending") == nonce + 2
    assert w3.eth.get_transaction_count(sender.address, first.blockNumber - 1) == nonce


# ---- fees ------------------------------------------------------------------------------------


def test_fee_history_shape(chain, w3):
    sender = chain.fresh_account(1)
    while w3.eth.block_number < 3:
        chain.send(sender, to=Account.create().address, value=1)
    head = w3.eth.block_number
    history = w3.eth.fee_history(3, "latest", [25, 75])
    assert history.oldestBlock == head - 2
    assert history.baseFeePerGas == [chain.base_fee] * 4  # three blocks and the next one
    assert len(history.gasUsedRatio) == 3
    assert all(0 < ratio <= 1 for ratio in history.gasUsedRatio)
    assert len(history.reward) == 3 and all(len(r) == 2 for r in history.reward)

    raw = raw_result(w3, "eth_feeHistory", "0x2", hex(head - 1))
    assert raw["oldestBlock"] == hex(head - 2)
    assert len(raw["baseFeePerGas"]) == 3 and len(raw["gasUsedRatio"]) == 2
    assert "reward" not in raw


def test_gas_price_covers_the_base_fee(chain, w3):
    base_fee = w3.eth.get_block("latest").baseFeePerGas
    assert w3.eth.gas_price >= base_fee > 0
    raw = raw_result(w3, "eth_gasPrice")
    assert raw == hex(int(raw, 16))  # minimal hex
    assert w3.eth.max_priority_fee >= 0
    # MetaMask's fallback: type 2 with maxFee = tip = eth_gasPrice must be accepted
    price = w3.eth.gas_price
    receipt = chain.send(
        chain.fresh_account(1),
        to=Account.create().address,
        value=1,
        maxFeePerGas=price,
        maxPriorityFeePerGas=price,
    )
    assert receipt.status == 1


# ---- wire details ------------------------------------------------------------------------------


def test_json_batch_of_mixed_calls(chain, w3, token, dev_accounts):
    address = dev_accounts[0].address
    balance_of = token.encode_abi("balanceOf", [address])
    batch = [
        {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
        {"jsonrpc": "2.0", "id": "two", "method": "eth_blockNumber"},
        {"jsonrpc": "2.0", "id": 3, "method": "eth_getBalance", "params": [address, "latest"]},
        {"jsonrpc": "2.0", "id": 4, "method": "eth_noSuchMethod", "params": []},
        {
            "jsonrpc": "2.0",
            "id": 5,
            "method": "eth_call",
            "params": [{"to": token.address, "data": balance_of}, "latest"],
        },
        {"jsonrpc": "2.0", "id": 6, "method": "eth_getBlockByNumber", "params": ["0x0", False]},
        {"jsonrpc": "2.0", "id": 7, "method": "eth_getBalance", "params": ["0x1234", "latest"]},
    ]
    responses = chain.post(batch)
    assert isinstance(responses, list) and len(responses) == len(batch)
    by_id = {r["id"]: r for r in responses}
    assert set(by_id) == {1, "two", 3, 4, 5, 6, 7}
    assert by_id[1]["result"] == hex(chain.chain_id)
    assert int(by_id["two"]["result"], 16) >= 0
    assert int(by_id[3]["result"], 16) == w3.eth.get_balance(address)
    assert by_id[4]["error"]["code"] == -32601
    assert int(by_id[5]["result"], 16) == token.functions.balanceOf(address).call()
    assert by_id[6]["result"]["number"] == "0x0"
    assert by_id[7]["error"]["code"] == -32602

    with w3.batch_requests() as web3_batch:
        web3_batch.add(w3.eth.get_block(0))
        web3_batch.add(token.functions.totalSupply())
        web3_batch.add(w3.eth.get_balance(address))
        genesis, supply, balance = web3_batch.execute()
    assert genesis.number == 0 and supply == chain.token_supply and balance > 0


@pytest.mark.parametrize(
    "nulls",
    [{"input": None}, {"value": None}, {"from": None, "gas": None, "gasPrice": None}],
    ids=["input-null-next-to-data", "value-null", "others-null"],
)
def test_null_fields_of_a_call_object_count_as_absent(chain, token, dev_accounts, nulls):
    """BUG (services/rpc/params.py, call_object): `"input": null` next to `"data"` makes the
    node call with empty input (value.get("input", value.get("data")) returns the None), and
    `"value": null` is refused with -32602. geth treats a null field as an absent one."""
    address = dev_accounts[0].address
    call = {"to": token.address, "data": token.encode_abi("balanceOf", [address])} | nulls
    response = chain.request("eth_call", call, "latest")
    assert "error" not in response, response
    assert int(response["result"], 16) == token.functions.balanceOf(address).call()


def test_zero_padded_hex_block_numbers_are_accepted(chain, w3, dev_accounts):
    if w3.eth.block_number < 1:
        chain.send(chain.fresh_account(1), to=Account.create().address, value=1)
    block = raw_result(w3, "eth_getBlockByNumber", "0x0001", False)
    assert block["number"] == "0x1"  # answered in minimal hex
    assert raw_result(w3, "eth_getBlockByNumber", "0x00", False)["number"] == "0x0"
    genesis_balance = raw_result(w3, "eth_getBalance", dev_accounts[5].address, "0x0000")
    assert int(genesis_balance, 16) == 10_000 * ETHER
    assert raw_result(w3, "eth_getTransactionCount", dev_accounts[5].address, "0x00") == "0x0"
    assert raw_result(w3, "eth_getBlockTransactionCountByNumber", "0x0000") == "0x0"


# ---- restarts --------------------------------------------------------------------------------


def _snapshot(chain: Any, addresses: list[str], tx_hashes: list[bytes]) -> dict[str, Any]:
    head = chain.head()
    return {
        "head": head,
        "latest": chain.rpc("eth_getBlockByNumber", "latest", True),
        "by_number": chain.rpc("eth_getBlockByNumber", hex(head), False),
        "balances": [chain.rpc("eth_getBalance", a, hex(head)) for a in addresses],
        "nonces": [chain.rpc("eth_getTransactionCount", a, "latest") for a in addresses],
        "tokens": [chain.token.functions.balanceOf(a).call() for a in addresses],
        "receipts": [chain.rpc("eth_getTransactionReceipt", hexstr(h)) for h in tx_hashes],
        "txs": [chain.rpc("eth_getTransactionByHash", hexstr(h)) for h in tx_hashes],
        "code": chain.rpc("eth_getCode", chain.token.address, "latest"),
        "blocks": [chain.rpc("eth_getBlockByNumber", hex(n), True) for n in range(head + 1)],
        "by_hash": [
            chain.rpc("eth_getBlockByHash", r["blockHash"], False)
            for r in (chain.rpc("eth_getTransactionReceipt", hexstr(h)) for h in tx_hashes)
        ],
        # state at every past block, as MetaMask asks with explicit numbers
        "history": [
            [chain.rpc("eth_getBalance", a, hex(n)) for a in addresses]
            + [chain.token.functions.balanceOf(a).call(block_identifier=n) for a in addresses]
            for n in range(head + 1)
        ],
        "logs": chain.rpc("eth_getLogs", {"fromBlock": "0x0", "toBlock": "latest"}),
        "token_logs": chain.rpc(
            "eth_getLogs", {"fromBlock": "earliest", "address": chain.token.address}
        ),
    }


def test_restart_after_sigterm_keeps_everything(start_node, connect, dev_accounts):
    node = start_node()
    chain = connect(node)
    owner, alice = dev_accounts[0], dev_accounts[1]
    bob = Account.create().address
    receipts = [
        chain.send(owner, to=bob, value=ETHER),
        chain.send(alice, to=bob, value=2 * ETHER, gasPrice=2 * chain.gwei),
        token_transfer(chain, owner, bob, 1_000),
        token_transfer(chain, owner, alice.address, 2_000),
    ]
    assert all(r.status == 1 for r in receipts)
    addresses = [owner.address, alice.address, bob]
    hashes = [r.transactionHash for r in receipts]
    before = _snapshot(chain, addresses, hashes)
    assert before["head"] == 4

    node.stop()
    node.start()
    chain = connect(node)  # fresh connections: the old ones died with the process

    assert _snapshot(chain, addresses, hashes) == before
    after = chain.send(alice, to=bob, value=1)
    assert after.status == 1 and after.blockNumber == before["head"] + 1
    assert chain.w3.eth.get_block(after.blockNumber).parentHash == HexBytes(
        before["latest"]["hash"]
    )
    assert token_transfer(chain, owner, bob, 1).status == 1
    assert chain.token.functions.balanceOf(bob).call() == 1_001


def _sender_thread(
    url: str,
    raws: list[bytes],
    acked: list[tuple[bytes, bytes]],
    errors: list[Any],
    stop: threading.Event,
) -> None:
    """Send one transaction at a time until the node dies; record each acknowledged hash."""
    with RpcClient(url, timeout=10.0) as client:
        for raw in raws:
            if stop.is_set():
                return
            try:
                answered = client.call("eth_sendRawTransaction", hexstr(raw))
            except RpcUnavailable:
                return  # the node is gone: this send was never acknowledged
            except RpcCallError as refused:
                errors.append(refused)
                return
            acked.append((Web3.keccak(raw), HexBytes(answered)))


def test_sigkill_loses_no_acknowledged_transaction(start_node, connect, dev_accounts):
    node = start_node()
    chain = connect(node)
    receiver = Account.create().address

    # A burst in one JSON batch: the batch is answered once every block holding it is durable.
    burst_sender = dev_accounts[5]
    burst = [chain.sign(burst_sender, to=receiver, value=1, nonce=n) for n in range(25)]
    batch = [
        {"jsonrpc": "2.0", "id": i, "method": "eth_sendRawTransaction", "params": [hexstr(raw)]}
        for i, raw in enumerate(burst)
    ]
    answers = chain.post(batch)
    assert [a.get("result") for a in sorted(answers, key=lambda a: a["id"])] == [
        hexstr(Web3.keccak(raw)) for raw in burst
    ]
    acknowledged = [Web3.keccak(raw) for raw in burst]

    # Then single sends from four threads, killed mid-stream.
    senders = dev_accounts[1:5]
    acked: list[tuple[bytes, bytes]] = []
    errors: list[Any] = []
    stop = threading.Event()
    threads = [
        threading.Thread(
            target=_sender_thread,
            args=(
                node.url,
                [chain.sign(s, to=receiver, value=1, nonce=n) for n in range(100)],
                acked,
                errors,
                stop,
            ),
            daemon=True,
        )
        for s in senders
    ]
    for thread in threads:
        thread.start()
    with contextlib.suppress(WaitTimeout):  # the assertions below tell what went wrong
        wait_until(lambda: len(acked) >= 40 or errors, 20, "40 acknowledged sends", interval=0.005)
    node.kill()
    stop.set()
    for thread in threads:
        thread.join(timeout=15)
        assert not thread.is_alive()
    assert errors == []
    assert len(acked) >= 40, "the senders did not get going"
    for expected, answered in acked:
        assert answered == expected
    acknowledged += [tx_hash for tx_hash, _ in acked]

    node.start()
    chain = connect(node)
    missing = [
        hexstr(h) for h in acknowledged if chain.rpc("eth_getTransactionReceipt", hexstr(h)) is None
    ]
    assert missing == [], f"{len(missing)} acknowledged transactions lost by SIGKILL"
    for tx_hash in acknowledged:
        assert chain.rpc("eth_getTransactionReceipt", hexstr(tx_hash))["status"] == "0x1"
    head = chain.head()
    blocks = [chain.rpc("eth_getBlockByNumber", hex(n), False) for n in range(head + 1)]
    for parent, block in zip(blocks, blocks[1:]):
        assert block["parentHash"] == parent["hash"]
        assert block["transactions"], "a block without transactions"
    # the chain goes on from where it stopped
    for sender in [burst_sender, *senders]:
        nonce = chain.w3.eth.get_transaction_count(sender.address)
        assert chain.send(sender, to=receiver, value=1, nonce=nonce).status == 1
    assert chain.head() > head
