"""Deterministic gas for native apps: storage and logs priced like the EVM operations they
replace, compute counted by the sandbox's instrumentation, and hard bounds per transaction.

Wallets estimate and pay gas as on Ethereum; a token transfer costs about what an ERC-20
transfer costs. A transaction that runs out of gas or crosses a bound is halted with a
`Halt` (a BaseException, so app code catching `Exception` cannot swallow it) and fails with
a receipt; its state changes roll back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from rollup.types import Log
from vm.bus import send_gas
from vm.state import State, storage_key

__all__ = [
    "GasMeter",
    "Halt",
    "OutOfGas",
    "DepthExceeded",
    "TooManyWrites",
    "AllocationTooLarge",
    "WriteInView",
    "CALL_GAS",
    "SLOAD_GAS",
    "STEP_GAS",
    "MAX_DEPTH",
    "MAX_WRITES",
    "MAX_ALLOCATION",
    "MAX_INT_BITS",
]

CALL_GAS = 700
SLOAD_GAS = 2_100
SSTORE_SET_GAS = 20_000
SSTORE_RESET_GAS = 2_900
LOG_GAS = 375
LOG_TOPIC_GAS = 375
LOG_DATA_GAS = 8
STEP_GAS = 10  # one loop iteration or comprehension item
CALL_STEP_GAS = 40  # one Python function call inside the app
ALLOC_GAS_PER_WORD = 3  # per 32 bytes (or 256 bits) built by a sized operation

MAX_DEPTH = 128  # nested app function calls
MAX_WRITES = 20_000  # storage writes per transaction
MAX_ALLOCATION = 4 * 1024 * 1024  # bytes built by one sized operation
MAX_INT_BITS = 65_536  # bits of an integer built by *, ** or <<
MAX_RANGE = 10_000_000  # elements of one range()


class Halt(BaseException):  # noqa: N818 - a halt, not an error of the app
    """The meter stopped the transaction."""

    reason = "halted"


class OutOfGas(Halt):
    reason = "out of gas"


class DepthExceeded(Halt):
    reason = f"call depth above {MAX_DEPTH}"


class TooManyWrites(Halt):
    reason = f"more than {MAX_WRITES} storage writes"


class AllocationTooLarge(Halt):
    reason = "allocation above the per-transaction bound"


class WriteInView(Exception):
    pass


class GasMeter:
    __slots__ = ("limit", "used", "read_only", "depth", "writes")

    def __init__(self, limit: int, read_only: bool = False) -> None:
        self.limit, self.used, self.read_only = limit, CALL_GAS, read_only
        self.depth = 0
        self.writes = 0
        if self.used > limit:
            raise OutOfGas()

    def _charge(self, amount: int) -> None:
        self.used += amount
        if self.used > self.limit:
            raise OutOfGas()

    # ---- storage and logs ----

    def read(self, state: State, address: bytes, slot: bytes) -> bytes | None:
        self._charge(SLOAD_GAS)
        return state.get(storage_key(address, slot))

    def write(self, state: State, address: bytes, slot: bytes, value: bytes) -> None:
        if self.read_only:
            raise WriteInView()
        self.writes += 1
        if self.writes > MAX_WRITES:
            raise TooManyWrites()
        key = storage_key(address, slot)
        self._charge(SSTORE_RESET_GAS if state.get(key) or not value else SSTORE_SET_GAS)
        state.set(key, value)

    def log(self, log: Log) -> None:
        if self.read_only:
            raise WriteInView()
        self._charge(LOG_GAS + LOG_TOPIC_GAS * len(log.topics) + LOG_DATA_GAS * len(log.data))

    def message(self, data_size: int) -> None:
        """A cross-app message: priced by vm.bus, forbidden in views like a write."""
        if self.read_only:
            raise WriteInView()
        self._charge(send_gas(data_size))

    # ---- compute: called by instrumented app code ----

    def step(self) -> None:
        self.used += STEP_GAS
        if self.used > self.limit:
            raise OutOfGas()

    def enter(self) -> None:
        self.used += CALL_STEP_GAS
        self.depth += 1
        if self.used > self.limit:
            raise OutOfGas()
        if self.depth > MAX_DEPTH:
            raise DepthExceeded()

    def leave(self) -> None:
        self.depth -= 1

    def value(self, result: Any) -> Any:
        """A lambda's body: count the call, return its value."""
        self.step()
        return result

    def each(self, iterable: Iterable[Any]) -> Iterator[Any]:
        for item in iterable:
            self.used += STEP_GAS
            if self.used > self.limit:
                raise OutOfGas()
            yield item

    # ---- sized operations ----

    def check_size(self, size: int) -> None:
        if size > MAX_ALLOCATION:
            raise AllocationTooLarge()
        if size > 64:
            self._charge(ALLOC_GAS_PER_WORD * (size // 32))

    def check_range(self, length: int) -> None:
        if length > MAX_RANGE:
            raise AllocationTooLarge()

    def _check_bits(self, bits: int) -> None:
        if bits > MAX_INT_BITS:
            raise AllocationTooLarge()
        if bits > 512:
            self._charge(ALLOC_GAS_PER_WORD * (bits // 256))

    def mul(self, a: Any, b: Any) -> Any:
        if type(a) is int and type(b) is int:
            if a.bit_length() + b.bit_length() > 512:
                self._check_bits(a.bit_length() + b.bit_length())
            return a * b
        if isinstance(b, int) and hasattr(a, "__len__"):
            self.check_size(len(a) * max(b, 0) * _item_size(a))
        elif isinstance(a, int) and hasattr(b, "__len__"):
            self.check_size(len(b) * max(a, 0) * _item_size(b))
        return a * b

    def pow(self, a: Any, b: Any, mod: Any = None) -> Any:
        if mod is not None:
            return pow(a, b, mod)
        if type(a) is int and type(b) is int and b > 0 and abs(a) > 1:
            self._check_bits(a.bit_length() * b)
        return a**b

    def lshift(self, a: Any, b: Any) -> Any:
        if type(a) is int and type(b) is int and a and b > 0:
            self._check_bits(a.bit_length() + b)
        return a << b

    def sized(self, target: Any, method: str, *args: Any) -> Any:
        """`x.ljust(n)`, `n.to_bytes(size)`...: check the size before building it."""
        if args and isinstance(args[0], int):
            per_char = len(target) if method == "expandtabs" else 1  # every char may be a tab
            self.check_size(args[0] * per_char)
        bound: Callable[..., Any] = getattr(target, method)
        return bound(*args)


def _item_size(sequence: Any) -> int:
    """Bytes per element of a repeated sequence, as the bound sees it (pointers for lists)."""
    return 1 if isinstance(sequence, (bytes, bytearray, str)) else 8
