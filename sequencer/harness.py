"""`LocalChain`: an app's real sequencer in process, for app authors' tests and ours.

    with LocalChain.from_dir("my-app") as chain:
        receipt = chain.transact(chain.accounts[0], "transfer", chain.accounts[1], 10**18)
        assert chain.call("balanceOf", chain.accounts[1]) == 10**18

Transactions are signed with the dev keys, admitted and built into blocks by the same code the
node runs (in-memory SQLite), one block per `transact`.
"""

from __future__ import annotations

import itertools
import sys
import tempfile
from pathlib import Path
from typing import Any

from eth_account import Account

from rollup.blocks import block_entry_receipts
from rollup.errors import ExecutionReverted
from rollup.genesis import DEV_ADDRESSES, DEV_KEYS
from rollup.manifest import Manifest, parse_manifest
from rollup.types import Address, Log, Receipt
from sequencer.node import Sequencer
from vm.interface import Message
from vm.native.abi import decode_args, encode_values, is_static_word, selector
from vm.native.sdk import Event, MethodSpec
from vm.state import get_account
from vm.stf import env_of

__all__ = ["LocalChain"]


class LocalChain:
    def __init__(self, manifest: Manifest, source: str, db_url: str | None = None) -> None:
        self._tmp = None
        if db_url is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="rollup-harness-")
            db_url = f"sqlite:///{self._tmp.name}/chain.db"
        self.node = Sequencer(manifest, source, db_url)
        assert self.node.runtime is not None
        self.app = self.node.runtime
        self.accounts: list[Address] = list(DEV_ADDRESSES)
        self._keys = {a: k for a, k in zip(DEV_ADDRESSES, DEV_KEYS, strict=True)}
        self._clock = itertools.count(1_700_000_000_000, 10)
        self._by_name = {spec.name: spec for spec in self.app.app_class.__methods__.values()}

    @classmethod
    def from_dir(cls, app_dir: str | Path, db_url: str | None = None) -> LocalChain:
        app_dir = Path(app_dir)
        manifest = parse_manifest((app_dir / "rollup.toml").read_text())
        return cls(manifest, (app_dir / manifest.code).read_text(), db_url)

    def __enter__(self) -> LocalChain:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.node.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    def _spec(self, name: str) -> MethodSpec:
        try:
            return self._by_name[name]
        except KeyError:
            raise AttributeError(f"the app has no method {name}") from None

    def calldata(self, name: str, *args: Any) -> bytes:
        spec = self._spec(name)
        return selector(spec.signature) + encode_values(spec.arg_types, args)

    def sign(
        self,
        sender: Address,
        to: Address | None,
        data: bytes = b"",
        value: int = 0,
        gas: int = 1_000_000,
    ) -> bytes:
        nonce = self.node.mempool.next_nonce(sender, self.balance_nonce(sender)[0])
        tx = {
            "type": 2,
            "chainId": self.node.chain_id,
            "nonce": nonce,
            "to": to,
            "value": value,
            "gas": gas,
            "maxFeePerGas": 2 * self.node.manifest.base_fee,
            "maxPriorityFeePerGas": 0,
            "data": data,
        }
        return bytes(Account.sign_transaction(tx, self._keys[sender]).raw_transaction)

    def send_raw(self, raw: bytes) -> Receipt:
        tx = self.node.submit_raw(raw)
        self.node.produce(next(self._clock))
        status = self.node.transaction(tx.hash)
        assert status is not None and status.block is not None, "transaction was not included"
        return block_entry_receipts(status.block)[status.index]

    def transact(
        self, sender: Address, name: str, *args: Any, value: int = 0, gas: int = 1_000_000
    ) -> Receipt:
        data = self.calldata(name, *args)
        return self.send_raw(self.sign(sender, self.app.address, data, value, gas))

    def transfer(self, sender: Address, to: Address, value: int) -> Receipt:
        return self.send_raw(self.sign(sender, to, b"", value, gas=21_000))

    def call(self, name: str, *args: Any, sender: Address | None = None) -> Any:
        spec = self._spec(name)
        head = self.node.committed
        state = self.node.state_at(head.number)
        msg = Message(
            sender or self.accounts[0],
            self.app.address,
            0,
            self.calldata(name, *args),
            10**9,
            sender or self.accounts[0],
            0,
        )
        result = self.app.execute(state, env_of(head), msg)
        if not result.success:
            raise ExecutionReverted(None, result.output)
        values = decode_args(spec.return_types, result.output)
        return values[0] if len(values) == 1 else values

    def balance_nonce(self, address: Address) -> tuple[int, int]:
        return get_account(self.node.state, address)

    def decode_logs(self, receipt: Receipt) -> list[dict[str, Any]]:
        """Each log as {"event": name, "args": {field: value}, "log": raw} (args decoded from
        the topics and data with the app's event declarations)."""
        module = vars(sys.modules[self.app.app_class.__module__])
        events = {
            value.topic0(): value
            for value in module.values()
            if isinstance(value, type) and issubclass(value, Event) and value is not Event
        }
        return [_decode_log(events.get(log.topics[0]), log) for log in receipt.logs]


def _decode_log(event: type[Event] | None, log: Log) -> dict[str, Any]:
    if event is None:
        return {"event": None, "args": {}, "log": log}
    args: dict[str, Any] = {}
    topics = iter(log.topics[1:])
    data_fields = [(name, abi) for name, abi, indexed in event._fields if not indexed]
    data_values = decode_args([abi for _, abi in data_fields], log.data) if data_fields else ()
    data_iter = iter(data_values)
    for name, abi, indexed in event._fields:
        if not indexed:
            args[name] = next(data_iter)
        elif is_static_word(abi):
            args[name] = decode_args([abi], next(topics))[0]
        else:
            args[name] = next(topics)  # hashed: the topic is keccak of the value
    return {"event": event.__name__, "args": args, "log": log}
