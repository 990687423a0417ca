"""Deterministic gas for native apps, priced like the EVM operations they replace.

Wallets estimate and pay gas as on Ethereum; a token transfer costs about what an ERC-20
transfer costs. Compute metering (loops, calls) comes with the sandbox; this meter prices
storage and logs, the work that grows state and DA.
"""

from __future__ import annotations

from rollup.types import Log
from vm.state import State, storage_key

__all__ = ["GasMeter", "OutOfGas", "WriteInView", "CALL_GAS", "SLOAD_GAS"]

CALL_GAS = 700
SLOAD_GAS = 2_100
SSTORE_SET_GAS = 20_000
SSTORE_RESET_GAS = 2_900
LOG_GAS = 375
LOG_TOPIC_GAS = 375
LOG_DATA_GAS = 8


class OutOfGas(Exception):
    pass


class WriteInView(Exception):
    pass


class GasMeter:
    __slots__ = ("limit", "used", "read_only")

    def __init__(self, limit: int, read_only: bool = False) -> None:
        self.limit, self.used, self.read_only = limit, CALL_GAS, read_only
        if self.used > limit:
            raise OutOfGas()

    def _charge(self, amount: int) -> None:
        self.used += amount
        if self.used > self.limit:
            raise OutOfGas()

    def read(self, state: State, address: bytes, slot: bytes) -> bytes | None:
        self._charge(SLOAD_GAS)
        return state.get(storage_key(address, slot))

    def write(self, state: State, address: bytes, slot: bytes, value: bytes) -> None:
        if self.read_only:
            raise WriteInView()
        key = storage_key(address, slot)
        self._charge(SSTORE_RESET_GAS if state.get(key) or not value else SSTORE_SET_GAS)
        state.set(key, value)

    def log(self, log: Log) -> None:
        if self.read_only:
            raise WriteInView()
        self._charge(LOG_GAS + LOG_TOPIC_GAS * len(log.topics) + LOG_DATA_GAS * len(log.data))
