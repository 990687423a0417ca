"""What an EVM contract reads of its block on a real node, through web3.py: after a
transaction (its storage) and with eth_call (its return data), against the block headers the
node serves.

NUMBER, TIMESTAMP, COINBASE, CHAINID, GASLIMIT and PREVRANDAO are the header's. BASEFEE and
BLOCKHASH are pinned known differences from Ethereum (the README's EVM gaps, vm/evm/engine.py):
BASEFEE reads 0, not the app's base fee, and BLOCKHASH(n) reads keccak(decimal n), not block
n's hash. If those asserts fail, the engine changed: update the README and NOTES.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from eth_account import Account
from eth_typing import ChecksumAddress
from web3 import Web3
from web3.exceptions import Web3RPCError

from rollup.genesis import DEV_KEYS
from services.launch import NodeProcess
from services.scaffold import scaffold
from tests.vm.evm.block_env_probe import FIELDS, INIT, decode
from vm.evm.engine import ENGINE_BASE_FEE, engine_block_hash

pytestmark = pytest.mark.e2e

CHAIN_ID = 4343
SENDER = Account.from_key(DEV_KEYS[3])
RECEIPT_TIMEOUT = 30


class Chain:
    """The node's web3 client, with the probe contract deployed and run once."""

    def __init__(self, w3: Web3) -> None:
        self.w3 = w3
        deployed = self.send(None, INIT)
        assert deployed["status"] == 1 and deployed["contractAddress"]
        self.probe: ChecksumAddress = Web3.to_checksum_address(deployed["contractAddress"])
        self.run = self.send(self.probe, b"\x01")
        assert self.run["status"] == 1

    def send(self, to: str | None, data: bytes, max_fee: int | None = None) -> Any:
        base_fee = self.w3.eth.get_block("latest")["baseFeePerGas"]
        tx: dict[str, Any] = {
            "type": 2,
            "chainId": CHAIN_ID,
            "nonce": self.w3.eth.get_transaction_count(SENDER.address),
            "maxFeePerGas": 2 * base_fee if max_fee is None else max_fee,
            "maxPriorityFeePerGas": 0,
            "gas": 1_000_000,
            "data": data,
        }
        if to is not None:
            tx["to"] = to
        raw = SENDER.sign_transaction(tx).raw_transaction
        tx_hash = self.w3.eth.send_raw_transaction(raw)
        return self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=RECEIPT_TIMEOUT)

    def stored(self, block: int) -> dict[str, int]:
        """The probe's slots as of `block`: what the last transaction up to it read."""
        words = b"".join(
            bytes(self.w3.eth.get_storage_at(self.probe, i, block)) for i in range(len(FIELDS))
        )
        return decode(words)

    def call(self, block: int | str, **fields: Any) -> dict[str, int]:
        request = {"from": SENDER.address, "to": self.probe, "data": "0x01", **fields}
        return decode(bytes(self.w3.eth.call(request, block)))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    app_dir = scaffold(tmp_path_factory.mktemp("app") / "app", "evm", "env", CHAIN_ID)
    with NodeProcess(app_dir, tmp_path_factory.mktemp("data")) as node:
        yield Chain(Web3(Web3.HTTPProvider(node.url)))


def expected(w3: Web3, number: int) -> dict[str, int]:
    """What a contract reads in block `number` of this node; the two gaps marked."""
    header = w3.eth.get_block(number)
    return {
        "basefee": ENGINE_BASE_FEE,  # KNOWN GAP: Ethereum gives header.baseFeePerGas
        # KNOWN GAP: Ethereum gives header.parentHash
        "parent_hash": int.from_bytes(engine_block_hash(number, number - 1), "big"),
        "this_hash": 0,
        "number": number,
        "timestamp": header["timestamp"],
        "coinbase": int(header["miner"], 16),
        "chain_id": CHAIN_ID,
        "gas_limit": header["gasLimit"],
        "prev_randao": int.from_bytes(header["mixHash"], "big"),
    }


def test_a_transaction_reads_the_headers_values(chain: Chain) -> None:
    number = chain.run["blockNumber"]
    assert chain.stored(number) == expected(chain.w3, number)


def test_basefee_and_blockhash_are_pinned_gaps(chain: Chain) -> None:
    """Not Ethereum's values: see the module's docstring before changing these asserts."""
    number = chain.run["blockNumber"]
    seen, header = chain.stored(number), chain.w3.eth.get_block(number)
    assert header["baseFeePerGas"] == Web3.to_wei(1, "gwei") and seen["basefee"] == 0
    parent = chain.w3.eth.get_block(number - 1)["hash"]
    assert header["parentHash"] == parent != seen["parent_hash"].to_bytes(32, "big")
    assert seen["parent_hash"].to_bytes(32, "big") == engine_block_hash(number, number - 1)


def test_eth_call_reads_what_the_transaction_read(chain: Chain) -> None:
    number = chain.run["blockNumber"]
    assert chain.call(number) == chain.stored(number)
    latest = chain.w3.eth.block_number
    assert chain.call("latest") == expected(chain.w3, latest)


def test_eth_call_below_the_base_fee_runs_as_before(chain: Chain) -> None:
    """Only admission and the STF check fees: a simulation priced under the base fee runs."""
    number = chain.run["blockNumber"]
    assert chain.call(number, gasPrice=1) == chain.stored(number)


def test_a_transaction_below_the_base_fee_is_refused(chain: Chain) -> None:
    base_fee = chain.w3.eth.get_block("latest")["baseFeePerGas"]
    with pytest.raises(Web3RPCError, match="max fee per gas less than block base fee"):
        chain.send(chain.probe, b"\x01", max_fee=base_fee - 1)
