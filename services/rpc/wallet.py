"""Dev accounts, unlocked on devnets: eth_accounts and the methods that sign with them.

Where rollup.toml enables dev accounts (`[genesis] dev_accounts = true`, the templates'
default) the node holds Anvil's ten dev keys, which are public, and signs with them as Anvil
and geth do, so test suites and scripts written against Anvil run unchanged:

    eth_accounts                         the ten addresses (EIP-55)
    eth_sign(address, data)              EIP-191 personal message signature
    personal_sign(data, address)         the same, parameters the other way round
    eth_signTypedData_v4(address, data)  EIP-712 (eth_signTypedData is the same, as in geth)
    eth_signTransaction(tx)              {"raw", "tx"}, the transaction filled in and signed
    eth_sendTransaction(tx)              filled in, signed and sent (services/rpc/server.py)

A transaction is filled in like Anvil does: the sender's pending nonce, the estimated gas,
and fees from the app's fixed base fee (EIP-1559 unless `gasPrice` or `type` 0/1 is given).
With dev accounts disabled (a production chain) every signing method answers
`NoUnlockedAccounts`; a `from` that is not a dev account answers `UnknownAccount`.

The signing methods are private (`Method.private`): a web page of another origin never
reaches them, since they act with keys the node holds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data
from eth_utils import to_checksum_address

from rollup.errors import InvalidParams, NoUnlockedAccounts, UnknownAccount
from rollup.genesis import DEV_ADDRESSES, DEV_KEYS
from rollup.transactions import decode_transaction
from rollup.types import ACCESS_LIST_TX, DYNAMIC_FEE_TX, LEGACY_TX, Address
from sequencer import simulate
from sequencer.node import Sequencer
from sequencer.simulate import Budget, CallRequest
from services.rpc import codec
from services.rpc.codec import data
from services.rpc.params import call_object
from services.rpc.registry import Method, method
from services.rpc.render import tx_json
from vm.state import get_account

__all__ = ["METHODS", "TxRequest", "signed_transaction", "tx_request", "unlocked"]

_DEV: dict[bytes, str] = dict(zip(DEV_ADDRESSES, DEV_KEYS, strict=True))
_TYPES = (LEGACY_TX, ACCESS_LIST_TX, DYNAMIC_FEE_TX)


def unlocked(node: Sequencer) -> dict[bytes, str]:
    """The keys this node signs with, by address: the dev accounts where the app enables them."""
    return _DEV if node.manifest.dev_accounts else {}


def _key(node: Sequencer, address: bytes) -> str:
    keys = unlocked(node)
    if not keys:
        raise NoUnlockedAccounts()
    key = keys.get(address)
    if key is None:
        raise UnknownAccount(address)
    return key


# ---- parameters ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TxRequest:
    """A transaction object of eth_sendTransaction / eth_signTransaction: a call object with
    a `from`, and the nonce and type a call object leaves out."""

    call: CallRequest
    sender: bytes
    nonce: int | None = None
    tx_type: int | None = None


def tx_request(value: Any) -> TxRequest:
    call = call_object(value)
    if call.sender is None:
        raise InvalidParams('missing value for required argument "from"')
    nonce = value.get("nonce")
    tx_type = value.get("type")
    request = TxRequest(
        call,
        call.sender,
        codec.parse_quantity(nonce, "nonce") if nonce is not None else None,
        codec.parse_quantity(tx_type, "type") if tx_type is not None else None,
    )
    if request.tx_type is not None and request.tx_type not in _TYPES:
        raise InvalidParams(f"transaction type {request.tx_type} is not supported")
    return request


def typed_data(value: Any) -> dict[str, Any]:
    """EIP-712 typed data, as an object or as its JSON text (MetaMask sends text)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise InvalidParams("typed data is not JSON") from None
    if not isinstance(value, dict):
        raise InvalidParams("typed data must be an object")
    return value


# ---- filling in and signing ----------------------------------------------------------------


def filled(
    node: Sequencer, request: TxRequest, gas_cap: int, budget: Budget | None
) -> dict[str, Any]:
    """The transaction as eth-account signs it: nonce, gas and fees filled in where absent."""
    call = request.call
    nonce = request.nonce
    if nonce is None:
        state_nonce = get_account(node.state, request.sender)[0]
        nonce = node.mempool.next_nonce(Address(request.sender), state_nonce)
    gas = call.gas
    if gas is None:
        number = node.committed.number
        gas = simulate.estimate_gas(node, call, number, None, gas_cap, budget)
    tx: dict[str, Any] = {
        "chainId": node.chain_id,
        "nonce": nonce,
        "gas": gas,
        "value": call.value,
        "data": call.data,
    }
    if call.to is not None:
        tx["to"] = to_checksum_address(call.to)
    legacy = request.tx_type in (LEGACY_TX, ACCESS_LIST_TX) or (
        request.tx_type is None and call.gas_price is not None
    )
    if legacy:
        tx["gasPrice"] = call.gas_price if call.gas_price is not None else node.manifest.base_fee
    else:
        tip = call.max_priority_fee if call.max_priority_fee is not None else 0
        fee_cap = call.max_fee if call.max_fee is not None else node.manifest.base_fee + tip
        tx["maxPriorityFeePerGas"] = tip
        tx["maxFeePerGas"] = fee_cap
    if call.access_list or request.tx_type in (ACCESS_LIST_TX, DYNAMIC_FEE_TX):
        tx["accessList"] = [
            {"address": to_checksum_address(a), "storageKeys": ["0x" + k.hex() for k in keys]}
            for a, keys in call.access_list
        ]
    if request.tx_type is not None:
        tx["type"] = request.tx_type
    return tx


def signed_transaction(
    node: Sequencer, request: TxRequest, gas_cap: int, budget: Budget | None = None
) -> bytes:
    """The raw transaction, filled in and signed by the node's key for `from`."""
    key = _key(node, request.sender)
    tx = filled(node, request, gas_cap, budget)
    return bytes(Account.sign_transaction(tx, key).raw_transaction)


# ---- the methods ---------------------------------------------------------------------------


def accounts(node: Sequencer) -> list[str]:
    return [to_checksum_address(address) for address in unlocked(node)]


def sign(node: Sequencer, address: bytes, message: bytes) -> str:
    signed = Account.sign_message(encode_defunct(primitive=message), _key(node, address))
    return data(bytes(signed.signature))


def personal_sign(node: Sequencer, message: bytes, address: bytes) -> str:
    return sign(node, address, message)


def sign_typed_data(node: Sequencer, address: bytes, typed: dict[str, Any]) -> str:
    key = _key(node, address)
    try:
        message = encode_typed_data(full_message=typed)
    except (ValueError, TypeError, KeyError) as exc:
        raise InvalidParams(f"invalid typed data: {exc}") from None
    return data(bytes(Account.sign_message(message, key).signature))


def sign_transaction(
    node: Sequencer, request: TxRequest, *, gas_cap: int, budget: Budget | None = None
) -> dict[str, Any]:
    """geth's answer: the raw transaction and the transaction object (no block yet)."""
    raw = signed_transaction(node, request, gas_cap, budget)
    tx = decode_transaction(raw, node.chain_id)
    return {"raw": data(raw), "tx": tx_json(tx, None, 0)}


_address = codec.parse_address
_data = codec.parse_data

METHODS: dict[str, Method] = {
    "eth_accounts": method(accounts),
    "eth_sign": method(sign, _address, _data, private=True),
    "personal_sign": method(personal_sign, _data, _address, private=True),
    "eth_signTypedData": method(sign_typed_data, _address, typed_data, private=True),
    "eth_signTypedData_v4": method(sign_typed_data, _address, typed_data, private=True),
    "eth_signTransaction": method(sign_transaction, tx_request, runs="budget", private=True),
}
