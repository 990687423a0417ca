"""`L1Client`: the one place that talks to the L1 (web3.py over HTTP), signing with one key.

    send(to, data, blobs=())   sign (EIP-1559, or EIP-4844 with blobs), send, wait for inclusion
    call / logs / code         reads at `latest`
    block_number(tag)          "latest", "safe" or "finalized"
    transaction_input(hash)    a transaction's calldata (calldata DA)
    blobs(hash)                a blob transaction's blobs, checked against its versioned hashes
Errors say what the caller should do: `L1Unavailable` (also a ConnectionError: the L1 cannot
be reached or did not include a transaction in time; retry), `L1Rejected` (the L1 or a
contract refused; `data` carries the revert payload) and `L1BadData` (also a ValueError: an
answer contradicts the L1's own commitments). One client sends from one thread: the
nonce is the account's pending count at each send.

Blobs are read with Anvil's `anvil_getBlobsByTransactionHash` (Anvil keeps them, also across
restarts with --state); a production L1 serves them from its beacon node instead (not built).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import requests
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.exceptions import ContractLogicError, TimeExhausted, TransactionNotFound, Web3Exception

from bridge import kzg
from rollup import rlp
from rollup.errors import Action, RollupError

__all__ = ["L1Error", "L1Unavailable", "L1Rejected", "L1BadData", "L1Receipt", "L1Client"]

BLOB_TX_WRAPPER_VERSION = b"\x01"  # EIP-7594 cell proofs


class L1Error(RollupError):
    """Root of the L1 client's errors; one that is none of the three below stops the caller."""


class L1Unavailable(L1Error, ConnectionError):
    """The L1 cannot be reached, or did not include a transaction in time: retry later."""

    action = Action.RETRY


class L1Rejected(L1Error):
    """The L1 refused a transaction or a call; `data` is the revert payload, if any, and
    `error` the name of the contract's custom error it encodes, when one of ours says so."""

    action = Action.FIX_INPUT

    def __init__(self, message: str, data: bytes = b"", error: str | None = None) -> None:
        super().__init__(message)
        self.data, self.error = data, error


class L1BadData(L1Error, ValueError):
    """The L1 answered with data that contradicts its own commitments (a lying RPC)."""


@dataclass(frozen=True, slots=True)
class L1Receipt:
    tx_hash: bytes
    block_number: int
    logs: tuple[Any, ...]  # web3 log receipts, for the caller's contract to decode
    contract_address: bytes | None = None  # what a creation created


@contextlib.contextmanager
def _mapped_errors(what: str) -> Iterator[None]:
    """web3's and requests' errors as ours, by what the caller must do."""
    try:
        yield
    except (requests.RequestException, OSError, TimeExhausted) as exc:
        raise L1Unavailable(f"L1 unreachable ({what}): {exc}") from None
    except ContractLogicError as exc:
        data = exc.data if isinstance(exc.data, str) else ""
        payload = bytes.fromhex(data[2:]) if data.startswith("0x") else b""
        raise L1Rejected(f"{what} reverted: {exc.message or exc}", payload) from None
    except Web3Exception as exc:
        raise L1Rejected(f"{what}: {exc}") from None


class L1Client:
    def __init__(
        self,
        rpc_url: str,
        key: str | None = None,
        timeout: float = 10.0,
        receipt_timeout: float = 60.0,
    ) -> None:
        self.rpc_url = rpc_url
        provider = Web3.HTTPProvider(
            rpc_url, request_kwargs={"timeout": timeout}, exception_retry_configuration=None
        )
        self.w3 = Web3(provider)
        self.account: LocalAccount | None = Account.from_key(key) if key else None
        self.receipt_timeout = receipt_timeout
        self._chain_id: int | None = None

    @property
    def address(self) -> bytes:
        if self.account is None:
            raise L1Error("this L1 client has no key")
        return bytes.fromhex(self.account.address[2:])

    @property
    def chain_id(self) -> int:
        if self._chain_id is None:
            with _mapped_errors("eth_chainId"):
                self._chain_id = int(self.w3.eth.chain_id)
        return self._chain_id

    # ---- reads ----

    def block_number(self, tag: str = "latest") -> int:
        with _mapped_errors(f"block {tag}"):
            if tag == "latest":
                return int(self.w3.eth.block_number)
            block = self.w3.eth.get_block(tag)  # type: ignore[arg-type]
        return int(block["number"]) if block else 0

    def call(self, to: bytes, data: bytes) -> bytes:
        with _mapped_errors("eth_call"):
            return bytes(self.w3.eth.call({"to": _address(to), "data": data}))

    def code(self, address: bytes) -> bytes:
        with _mapped_errors("eth_getCode"):
            return bytes(self.w3.eth.get_code(_address(address)))

    def balance(self, address: bytes) -> int:
        with _mapped_errors("eth_getBalance"):
            return int(self.w3.eth.get_balance(_address(address)))

    def logs(
        self, address: bytes, topics: Sequence[bytes | None], from_block: int, to_block: int
    ) -> list[Any]:
        query: Any = {
            "address": _address(address),
            "fromBlock": from_block,
            "toBlock": to_block,
            "topics": ["0x" + t.hex() if t is not None else None for t in topics],
        }
        with _mapped_errors("eth_getLogs"):
            return list(self.w3.eth.get_logs(query))

    def transaction_input(self, tx_hash: bytes) -> bytes | None:
        """The calldata of an included transaction; None if the L1 does not know it."""
        with _mapped_errors("eth_getTransactionByHash"):
            try:
                tx = self.w3.eth.get_transaction(tx_hash)  # type: ignore[arg-type]
            except TransactionNotFound:
                return None
        return bytes(tx["input"]) if tx.get("blockNumber") is not None else None

    def blobs(self, tx_hash: bytes) -> list[bytes] | None:
        """The blobs of an included blob transaction, each checked against its versioned hash
        (so a lying RPC cannot substitute them); None if the L1 does not have them."""
        with _mapped_errors("eth_getTransactionByHash"):
            try:
                tx = self.w3.eth.get_transaction(tx_hash)  # type: ignore[arg-type]
            except TransactionNotFound:
                return None
            hashes = [bytes(h) for h in tx.get("blobVersionedHashes") or []]
            answer = self.w3.provider.make_request(
                "anvil_getBlobsByTransactionHash",  # type: ignore[arg-type]
                ["0x" + tx_hash.hex()],
            )
        blobs = _blob_list(answer)
        if blobs is None or not hashes:
            return None
        if len(blobs) != len(hashes) or not all(map(kzg.check_blob, blobs, hashes)):
            raise L1BadData(f"blobs of 0x{tx_hash.hex()} do not match their versioned hashes")
        return blobs

    # ---- writes ----

    def send(
        self, to: bytes | None, data: bytes = b"", blobs: Sequence[bytes] = (), value: int = 0
    ) -> L1Receipt:
        """Sign and send a transaction and wait until it is included; `L1Rejected` if it
        reverts (found by estimating its gas first, so a revert costs nothing)."""
        raw = self._signed(to, data, list(blobs), value)
        with _mapped_errors("eth_sendRawTransaction"):
            tx_hash = bytes(self.w3.eth.send_raw_transaction(raw))
        return self._wait(tx_hash)

    def _signed(self, to: bytes | None, data: bytes, blobs: list[bytes], value: int) -> bytes:
        if self.account is None:
            raise L1Error("this L1 client has no key to send with")
        sender = self.account.address
        with _mapped_errors("preparing a transaction"):
            call: Any = {"from": sender, "data": data, "value": value}
            if to is not None:
                call["to"] = _address(to)
            gas = self.w3.eth.estimate_gas(call)
            base = int(self.w3.eth.get_block("latest")["baseFeePerGas"])
            tip = int(self.w3.eth.max_priority_fee)
            nonce = self.w3.eth.get_transaction_count(sender, "pending")
            tx: dict[str, Any] = dict(
                call,
                chainId=self.chain_id,
                gas=gas + gas // 5,
                nonce=nonce,
                maxPriorityFeePerGas=tip,
                maxFeePerGas=2 * base + tip,
            )
            if blobs:
                tx["maxFeePerBlobGas"] = max(2 * int(self.w3.eth.blob_base_fee), 1)
        if not blobs:
            return bytes(self.account.sign_transaction(tx).raw_transaction)
        commitments = [kzg.commitment(blob) for blob in blobs]
        tx.update(type=3, blobVersionedHashes=[kzg.versioned_hash(c) for c in commitments])
        body = rlp.decode(bytes(self.account.sign_transaction(tx).raw_transaction)[1:])
        proofs: list[rlp.RLPItem] = [p for blob in blobs for p in kzg.cell_proofs(blob)]
        sidecar: list[rlp.RLPItem] = [
            body,
            BLOB_TX_WRAPPER_VERSION,
            list(blobs),
            list(commitments),
            proofs,
        ]
        return b"\x03" + rlp.encode(sidecar)

    def _wait(self, tx_hash: bytes) -> L1Receipt:
        deadline = time.monotonic() + self.receipt_timeout
        while True:
            with _mapped_errors("eth_getTransactionReceipt"):
                try:
                    receipt = self.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
                except TransactionNotFound:
                    receipt = None
            if receipt is not None and receipt.get("blockNumber") is not None:
                break
            if time.monotonic() > deadline:
                raise L1Unavailable(
                    f"0x{tx_hash.hex()} was not included within {self.receipt_timeout:g} s"
                )
            time.sleep(0.05)
        if receipt["status"] != 1:
            raise L1Rejected(f"transaction 0x{tx_hash.hex()} reverted")
        created = receipt.get("contractAddress")
        return L1Receipt(
            tx_hash,
            int(receipt["blockNumber"]),
            tuple(receipt["logs"]),
            bytes.fromhex(created[2:]) if created else None,
        )


def _address(raw: bytes) -> Any:
    return Web3.to_checksum_address(raw)


def _blob_list(answer: Any) -> list[bytes] | None:
    result = answer.get("result") if isinstance(answer, dict) else None
    if not isinstance(result, list) or not all(isinstance(b, str) for b in result):
        return None
    try:
        return [bytes.fromhex(b.removeprefix("0x")) for b in result]
    except ValueError:
        return None
