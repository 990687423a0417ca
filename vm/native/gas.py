"""Deterministic gas for native apps: storage and logs priced like the EVM operations they
replace, compute counted by the sandbox's instrumentation, and hard bounds per transaction.

Wallets estimate and pay gas as on Ethereum; a token transfer costs about what an ERC-20
transfer costs. A transaction that runs out of gas or crosses a bound is halted with a
`Halt` (a BaseException, so app code catching `Exception` cannot swallow it) and fails with
a receipt; its state changes roll back.

Compute is priced by what it does, never by time (the same count on every machine). The
instrumentation (sandbox.py) calls this meter; every operation whose cost grows with its
input is charged before it runs, or refused:
    code       NODE_GAS per syntax node of a block, charged as the block starts: a function
               body (+ CALL_STEP_GAS, and one level of MAX_DEPTH; lambdas too), a loop body
               (+ STEP_GAS per iteration), a comprehension item (+ STEP_GAS), a module or
               class body
    hooks      HOOK_GAS for each call into the meter that does more than an int operation:
               a method of a builtin value, a builtin (int(), sorted()...), a text conversion
               (twice for %-formatting), a slice, a spread, a comparison that walks
    data       WORD_GAS per 32 bytes an operation builds, copies or scans (EVM's copy price),
               ITEM_GAS per element a builtin handles in C (copy, iteration, sort: n log n)
    structure  before C code compares, hashes or prints a value, the value is walked:
               UNIT_GAS per element and per 32 bytes of text or integer, aliases counted as
               often as C would visit them (so `x = [x, x]` twenty times cannot compare 2^20),
               at most MAX_NESTING levels (hashing a tuple recurses in C without a limit)
    integers   at most MAX_INT_BITS; `+ - << >>` and `&|^` linear; `*` words(a)*words(b)/3;
               `// % divmod` words(a)*words(b)/3 + words(a); `**` by its result;
               pow(b, e, m) as EIP-2565's MODEXP doubled: 2*words(max(b, m))^2*bits(e);
               decimal text (str(), int(str)) digits^2/800, and at most MAX_STR_DIGITS digits
    search     find/count/index/in/split/replace/partition: len(haystack)/2 + len(needle),
               plus ITEM_GAS per piece they make
    builds     one operation builds at most MAX_ALLOCATION bytes (a list counts 8 per item),
               a transaction at most MAX_TX_ALLOCATION through sized operations
    output     return data and an app's revert data: EVM memory expansion (output_gas)
Calibration (one core of the development machine, each operation in a loop under 10-20M
gas): a bare loop iteration ~5 ns per gas, the operations above at most ~20 ns per gas
(str() of a 10,000-item list, f-strings), most 1-11 (an EVM client runs compute at roughly
5-30 ns per gas). Honest apps pay little: a token transfer spends ~100 gas on compute.

The meter is found by instrumented code as the module global `__meter__`, which the runtime
sets before each call; SDK functions that app code calls without `self` (app_address,
abi_decode, revert) find it through `active_meter()`. App code therefore runs one call at a
time per process: a node serializes its VM calls (see vm/native/runtime.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from rollup.errors import ExecutionError
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
    "NestingTooDeep",
    "WriteInView",
    "NoTextForm",
    "active_meter",
    "output_gas",
    "set_active_meter",
    "CALL_GAS",
    "SLOAD_GAS",
    "STEP_GAS",
    "CALL_STEP_GAS",
    "NODE_GAS",
    "WORD_GAS",
    "ITEM_GAS",
    "UNIT_GAS",
    "HOOK_GAS",
    "MAX_DEPTH",
    "MAX_WRITES",
    "MAX_ALLOCATION",
    "MAX_TX_ALLOCATION",
    "MAX_INT_BITS",
    "MAX_STR_DIGITS",
    "MAX_NESTING",
]

CALL_GAS = 700
SLOAD_GAS = 2_100
SSTORE_SET_GAS = 20_000
SSTORE_RESET_GAS = 2_900
LOG_GAS = 375
LOG_TOPIC_GAS = 375
LOG_DATA_GAS = 8
STEP_GAS = 10  # one loop iteration or comprehension item
CALL_STEP_GAS = 40  # one Python function or lambda call inside the app
NODE_GAS = 1  # one syntax node of a block that starts (body of a function, loop, class...)
WORD_GAS = 3  # per 32 bytes built, copied or scanned
ITEM_GAS = 2  # per element a builtin handles in C
UNIT_GAS = 8  # per element (or 32 bytes) of a structure walked before C traverses it
HOOK_GAS = 40  # a call into the meter that does more than an integer operation, like a call

MAX_DEPTH = 128  # nested app function calls
MAX_WRITES = 20_000  # storage writes per transaction
MAX_ALLOCATION = 4 * 1024 * 1024  # bytes built by one sized operation
MAX_TX_ALLOCATION = 64 * 1024 * 1024  # bytes built by sized operations in one transaction
MAX_INT_BITS = 65_536  # bits of any integer app code makes
MAX_STR_DIGITS = 4_300  # decimal digits of int <-> str, CPython's default, on every node
MAX_NESTING = 256  # levels of lists, tuples and dicts in a value C code compares, hashes, prints

_FREE_BITS = 1_024  # integer results up to this size are not charged beyond their node
_FREE_BYTES = 64  # nor are builds up to this size
_CHUNK = 1_024  # walks charge every this many units, so an endless walk stops on time


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


class NestingTooDeep(Halt):
    """C code would recurse through the value, some of it (hashing a tuple) without any limit."""

    reason = f"values nested deeper than {MAX_NESTING}"


class WriteInView(ExecutionError):
    """A view (eth_call of a read-only method) tried to write storage."""

    def __init__(self) -> None:
        super().__init__("write in a view")


class NoTextForm(ExecutionError, TypeError):
    """A value without a deterministic text (a function, an app object...) was printed."""


_VIEWS: tuple[type, ...] = (type({}.keys()), type({}.values()), type({}.items()))
_SEQUENCES = (str, bytes, bytearray, list, tuple)
_TEXTS = (str, bytes, bytearray)
_SEQ = frozenset(_SEQUENCES)
_NESTS = frozenset({list, tuple, dict, *_VIEWS})
_UP = object()  # a walk's marker: the end of a container's items
_ITEM_BYTES: dict[type, int] = {str: 1, bytes: 1, bytearray: 1, list: 8, tuple: 8, dict: 16}
_ENCODINGS = frozenset({"utf-8", "utf8", "ascii", "latin-1", "latin1", "iso-8859-1"})
_ERRORS = frozenset({"strict", "ignore", "replace"})
_SPEC_NUMBER = re.compile(r"\d+")
_PERCENT_STR = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d*)(?:\.(\*|\d*))?[hlL]?(.?)", re.S)
_PERCENT_BYTES = re.compile(rb"%(?:\([^)]*\))?[-#0 +]*(\*|\d*)(?:\.(\*|\d*))?[hlL]?(.?)", re.S)
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def _words(bits: int) -> int:
    """64-bit words of an integer of `bits` bits (what EIP-2565 counts)."""
    return (bits + 63) >> 6


def mul_gas(a_bits: int, b_bits: int) -> int:
    return (_words(a_bits) * _words(b_bits)) // 3


def div_gas(a_bits: int, b_bits: int) -> int:
    return (_words(a_bits) * _words(b_bits)) // 3 + _words(a_bits)


def modexp_gas(base_bits: int, exp_bits: int, mod_bits: int) -> int:
    words = _words(max(base_bits, mod_bits))
    return 200 + 2 * words * words * max(exp_bits, 1)


def digits_gas(digits: int) -> int:
    """int <-> decimal text: CPython's conversions are quadratic in the digits."""
    return digits * digits // 800 + digits


def output_gas(size: int) -> int:
    """What `size` bytes of return or revert data cost: EVM memory expansion (linear, then
    quadratic: a megabyte costs about 2M gas), since the node keeps them with the receipt."""
    words = (size + 31) >> 5
    return WORD_GAS * words + words * words // 512


def scrub(text: str) -> str:
    """Memory addresses out of a message from library code (`<function f at 0x7f...>`)."""
    return _ADDRESS.sub(" at 0x?", text) if "0x" in text else text


def _arg(args: tuple[Any, ...], kwargs: dict[str, Any], index: int, name: str, default: Any) -> Any:
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)


class GasMeter:
    __slots__ = ("limit", "used", "read_only", "depth", "writes", "allocated", "halted")

    def __init__(self, limit: int, read_only: bool = False) -> None:
        self.limit, self.used, self.read_only = limit, CALL_GAS, read_only
        self.depth = 0
        self.writes = 0
        self.allocated = 0
        # the first bound crossed: it stays crossed even if app code lost the exception (a
        # `finally` that raises replaces it); out of gas stays so by itself (used > limit)
        self.halted: Halt | None = None
        if self.used > limit:
            raise OutOfGas()

    def _halt(self, kind: type[Halt]) -> Halt:
        halt = kind()
        if self.halted is None:
            self.halted = halt
        return halt

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
            raise self._halt(TooManyWrites)
        key = storage_key(address, slot)
        self._charge(SSTORE_RESET_GAS if state.get(key) or not value else SSTORE_SET_GAS)
        state.set(key, value)

    def long_value(self, size: int, written: bool) -> None:
        """A string or bytes value longer than a word: written, it takes a slot per word as in
        Solidity; read, it is copied."""
        words = (size - 1) >> 5
        self._charge(SSTORE_SET_GAS * words if written else WORD_GAS * (words + 1))

    def log(self, log: Log) -> None:
        if self.read_only:
            raise WriteInView()
        self._charge(LOG_GAS + LOG_TOPIC_GAS * len(log.topics) + LOG_DATA_GAS * len(log.data))

    def message(self, data_size: int) -> None:
        """A cross-app message: priced by vm.bus, forbidden in views like a write."""
        if self.read_only:
            raise WriteInView()
        self._charge(send_gas(data_size))

    # ---- blocks of code: called by instrumented app code ----

    def charge(self, gas: int) -> None:
        """A module or class body starts."""
        self._charge(gas)

    def enter(self, gas: int = 0) -> None:
        """A function body starts; `leave` runs when it ends."""
        self.used += CALL_STEP_GAS + gas
        self.depth += 1
        if self.used > self.limit:
            raise OutOfGas()
        if self.depth > MAX_DEPTH:
            raise self._halt(DepthExceeded)

    def leave(self) -> None:
        self.depth -= 1

    def start(self, gas: int = 0) -> None:
        """A generator's body starts: priced like a call; it holds no depth while suspended."""
        self.used += CALL_STEP_GAS + gas
        if self.used > self.limit:
            raise OutOfGas()
        if self.depth >= MAX_DEPTH:
            raise self._halt(DepthExceeded)

    def run(self, gas: int, body: Callable[[], Any]) -> Any:
        """A lambda's body: a call like any other, depth included."""
        self.enter(gas)
        try:
            return body()
        finally:
            self.depth -= 1

    def step(self, gas: int = 0) -> None:
        self.used += STEP_GAS + gas
        if self.used > self.limit:
            raise OutOfGas()

    def each(self, iterable: Iterable[Any], gas: int = 0) -> Iterator[Any]:
        cost = STEP_GAS + gas
        for item in iterable:
            self.used += cost
            if self.used > self.limit:
                raise OutOfGas()
            yield item

    def caught(self, exc: BaseException) -> None:
        """App code caught `exc`: the interpreter's own limits stay uncatchable, and messages
        from library code lose any memory address they show."""
        if isinstance(exc, RecursionError):
            raise self._halt(DepthExceeded) from None
        if isinstance(exc, MemoryError):
            raise self._halt(AllocationTooLarge) from None
        args = exc.args
        if any(type(a) is str and "0x" in a for a in args):
            exc.args = tuple(scrub(a) if type(a) is str else a for a in args)

    # ---- sizes ----

    def _build(self, size: int, kind: type = bytes) -> None:
        """An operation is about to build `size` items of `kind` (bytes, or list slots)."""
        size *= _ITEM_BYTES.get(kind, 1)
        if size > MAX_ALLOCATION:
            raise self._halt(AllocationTooLarge)
        if size > _FREE_BYTES:
            self.allocated += size
            if self.allocated > MAX_TX_ALLOCATION:
                raise self._halt(AllocationTooLarge)
            self._charge(WORD_GAS * (size >> 5))

    def _scan(self, size: int) -> None:
        """An operation reads `size` bytes (or list slots) in C."""
        if size > _FREE_BYTES:
            self._charge(WORD_GAS * (size >> 5))

    def _search(self, haystack: int, needle: int) -> None:
        self._charge((haystack >> 1) + needle)

    def _items(self, count: int) -> None:
        self._charge(ITEM_GAS * count)

    def _big_int(self, value: int) -> int:
        bits = value.bit_length()
        if bits > MAX_INT_BITS:
            raise self._halt(AllocationTooLarge)
        self._build(bits >> 3)
        return value

    def walk(self, value: Any) -> None:
        """Charge for the whole of `value` before C code compares, hashes or prints it, and
        refuse it past MAX_NESTING levels (hashing a tuple recurses in C without a limit)."""
        todo = [value]
        pop, push, mark = todo.pop, todo.extend, todo.append
        units = depth = 0
        while todo:
            item = pop()
            if item is _UP:
                depth -= 1
                continue
            kind = type(item)
            units += 1
            if kind is int:
                units += item.bit_length() >> 8
            elif kind is str or kind is bytes or kind is bytearray:
                units += len(item) >> 5
            elif item and kind in _NESTS:
                depth += 1
                if depth > MAX_NESTING:
                    raise self._halt(NestingTooDeep)
                mark(_UP)
                push(item)
                if kind is dict:
                    push(item.values())
            if units >= _CHUNK:
                self._charge(UNIT_GAS * units)
                units = 0
        self._charge(UNIT_GAS * units)

    # ---- keys and comparisons ----

    def key(self, key: Any) -> Any:
        """A dict key or index: hashing a tuple visits all of it."""
        kind = type(key)
        if kind is int:
            if key.bit_length() > 4_096:
                self._scan(key.bit_length() >> 3)
            return key
        if kind is bytes or kind is str:
            if len(key) > _FREE_BYTES:
                self._scan(len(key))
            return key
        if kind is tuple:
            self._charge(HOOK_GAS)
            self.walk(key)
        return key

    def _compared(self, a: Any, b: Any) -> None:
        self._charge(HOOK_GAS)
        kind = type(a)
        if kind is type(b):
            if kind is int:
                if a.bit_length() > 4_096:
                    self._scan(a.bit_length() >> 3)
                return
            if kind is bytes or kind is str:
                if len(a) == len(b):
                    self._scan(len(a))
                return
        self.walk(a)
        self.walk(b)

    # An int of at most 4096 bits on the left compares at once (another type, or another size)
    # or in 4096 bits, so does a short bytes or str: these cost no more than their node.
    # Anything else is walked first (equal big ints compare digit by digit).

    def eq(self, a: Any, b: Any) -> Any:
        kind = type(a)
        if (kind is int and a.bit_length() <= 4_096) or (
            (kind is bytes or kind is str) and len(a) <= _FREE_BYTES
        ):
            return a == b
        self._compared(a, b)
        return a == b

    def ne(self, a: Any, b: Any) -> Any:
        kind = type(a)
        if (kind is int and a.bit_length() <= 4_096) or (
            (kind is bytes or kind is str) and len(a) <= _FREE_BYTES
        ):
            return a != b
        self._compared(a, b)
        return a != b

    def lt(self, a: Any, b: Any) -> Any:
        if type(a) is int and a.bit_length() <= 4_096:
            return a < b
        self._compared(a, b)
        return a < b

    def le(self, a: Any, b: Any) -> Any:
        if type(a) is int and a.bit_length() <= 4_096:
            return a <= b
        self._compared(a, b)
        return a <= b

    def gt(self, a: Any, b: Any) -> Any:
        if type(a) is int and a.bit_length() <= 4_096:
            return a > b
        self._compared(a, b)
        return a > b

    def ge(self, a: Any, b: Any) -> Any:
        if type(a) is int and a.bit_length() <= 4_096:
            return a >= b
        self._compared(a, b)
        return a >= b

    def operand(self, value: Any) -> Any:
        """One operand of a chained comparison (`a < b < c`)."""
        self._charge(HOOK_GAS)
        if type(value) is not int:
            self.walk(value)
        return value

    def contains(self, item: Any, container: Any) -> bool:
        """`item in container`."""
        kind = type(container)
        if kind is dict or kind is _VIEWS[0]:
            self.key(item)
            return item in container
        self._charge(HOOK_GAS)
        if kind is str or kind is bytes or kind is bytearray:
            self._search(len(container), len(item) if isinstance(item, _TEXTS) else 1)
        elif kind is range:
            if type(item) is not int and type(item) is not bool:
                self._items(len(container))
        elif kind is list or kind is tuple or kind in _VIEWS:
            self.walk(container)
            self.walk(item)
        elif _iterable(container):
            return any(x is item or self.eq(x, item) for x in self.each(container))
        return item in container

    def not_contains(self, item: Any, container: Any) -> bool:
        return not self.contains(item, container)

    def container(self, value: Any) -> Any:
        """The right operand of `in` inside a chained comparison."""
        self._charge(HOOK_GAS)
        if isinstance(value, (*_SEQUENCES, dict, range, *_VIEWS)):
            self.walk(value)
            return value
        return self.spread(value) if _iterable(value) else value

    # ---- arithmetic ----

    # An int on the left: the result is an int (or the operation fails at once).

    def add(self, a: Any, b: Any) -> Any:
        kind = type(a)
        if kind is int:
            result = a + b
            return result if result.bit_length() <= _FREE_BITS else self._big_int(result)
        if kind in _SEQ and type(b) in _SEQ:
            self._build(len(a) + len(b), kind)
        return a + b

    def sub(self, a: Any, b: Any) -> Any:
        if type(a) is int:
            result = a - b
            return result if result.bit_length() <= _FREE_BITS else self._big_int(result)
        _no_set(a, b)
        return a - b

    def mul(self, a: Any, b: Any) -> Any:
        if type(a) is int and type(b) is int:
            bits = a.bit_length() + b.bit_length()
            if bits <= _FREE_BITS:
                return a * b
            if bits > MAX_INT_BITS + 1:
                raise self._halt(AllocationTooLarge)
            self._charge(mul_gas(a.bit_length(), b.bit_length()))
            return self._big_int(a * b)
        if isinstance(b, int) and type(a) in _SEQ:
            self._build(len(a) * max(b, 0), type(a))
        elif isinstance(a, int) and type(b) in _SEQ:
            self._build(len(b) * max(a, 0), type(b))
        return a * b

    def floordiv(self, a: Any, b: Any) -> Any:
        if type(a) is int and type(b) is int and a.bit_length() > _FREE_BITS:
            self._charge(div_gas(a.bit_length(), b.bit_length()))
        return a // b

    def mod(self, a: Any, b: Any) -> Any:
        kind = type(a)
        if kind is int:
            if type(b) is int and a.bit_length() > _FREE_BITS:
                self._charge(div_gas(a.bit_length(), b.bit_length()))
            return a % b
        if kind is str or kind is bytes or kind is bytearray:
            return self.percent(a, b)
        return a % b

    def divmod(self, a: Any, b: Any) -> Any:
        self._charge(HOOK_GAS)
        if type(a) is int and type(b) is int and a.bit_length() > _FREE_BITS:
            self._charge(div_gas(a.bit_length(), b.bit_length()))
        return divmod(a, b)

    def pow(self, a: Any, b: Any, mod: Any = None) -> Any:
        if not (isinstance(a, int) and isinstance(b, int)):
            return a**b if mod is None else pow(a, b, mod)
        if mod is not None:
            if isinstance(mod, int):
                gas = modexp_gas(a.bit_length(), b.bit_length(), mod.bit_length())
                if b < 0:  # a modular inverse first
                    gas += mul_gas(mod.bit_length(), mod.bit_length())
                self._charge(gas)
            return pow(a, b, mod)
        if b < 0:
            raise ValueError("a negative exponent makes a float: apps use integers only")
        if b > 1 and abs(a) > 1:
            if (a.bit_length() - 1) * b + 1 > MAX_INT_BITS:  # at least this many bits
                raise self._halt(AllocationTooLarge)
            bits = a.bit_length() * b  # at most this many
            if bits > _FREE_BITS:
                self._charge(mul_gas(bits, bits))
                return self._big_int(a**b)
        return a**b

    def lshift(self, a: Any, b: Any) -> Any:
        if type(a) is int and type(b) is int and a and b > 0:
            bits = a.bit_length() + b
            if bits > MAX_INT_BITS:
                raise self._halt(AllocationTooLarge)
            if bits > _FREE_BITS:
                self._build(bits >> 3)
        return a << b

    def bitor(self, a: Any, b: Any) -> Any:
        if type(a) is dict and type(b) is dict:
            self._build(len(a) + len(b), dict)
        _no_set(a, b)
        return a | b

    def bitand(self, a: Any, b: Any) -> Any:
        _no_set(a, b)
        return a & b

    def bitxor(self, a: Any, b: Any) -> Any:
        _no_set(a, b)
        return a ^ b

    # in place (`x += y` on a name): lists and bytearrays change in place, the rest rebinds

    def iadd(self, a: Any, b: Any) -> Any:
        kind = type(a)
        if kind is int:
            result = a + b
            return result if result.bit_length() <= _FREE_BITS else self._big_int(result)
        if kind is list or kind is bytearray:
            items = self.spread(b)
            self._build(len(items), kind)
            a += items
            return a
        return self.add(a, b)

    def isub(self, a: Any, b: Any) -> Any:
        return self.sub(a, b)

    def imul(self, a: Any, b: Any) -> Any:
        kind = type(a)
        if (kind is list or kind is bytearray) and isinstance(b, int):
            self._build(len(a) * max(b, 0), kind)
            a *= b
            return a
        return self.mul(a, b)

    def ifloordiv(self, a: Any, b: Any) -> Any:
        return self.floordiv(a, b)

    def imod(self, a: Any, b: Any) -> Any:
        return self.mod(a, b)

    def ipow(self, a: Any, b: Any) -> Any:
        return self.pow(a, b)

    def ilshift(self, a: Any, b: Any) -> Any:
        return self.lshift(a, b)

    def ior(self, a: Any, b: Any) -> Any:
        if type(a) is dict:
            items = b if type(b) is dict else self.spread(b)
            self._items(len(items))
            a |= items
            return a
        return self.bitor(a, b)

    def iand(self, a: Any, b: Any) -> Any:
        return self.bitand(a, b)

    def ixor(self, a: Any, b: Any) -> Any:
        return self.bitxor(a, b)

    # ---- slices, deletions, unpacking ----

    def getslice(self, obj: Any, lower: Any, upper: Any, step: Any) -> Any:
        self._charge(HOOK_GAS)
        kind = type(obj)
        if kind in _ITEM_BYTES:
            span = slice(lower, upper, step).indices(len(obj))
            self._build(len(range(*span)), kind)
        return obj[lower:upper:step]

    def setslice(self, obj: Any, lower: Any, upper: Any, step: Any, value: Any) -> None:
        self._charge(HOOK_GAS)
        items = self.spread(value)
        if type(obj) in _ITEM_BYTES:
            self._build(len(obj) + len(items), type(obj))
        obj[lower:upper:step] = items

    def delslice(self, obj: Any, lower: Any, upper: Any, step: Any) -> None:
        self._charge(HOOK_GAS)
        if type(obj) in _ITEM_BYTES:
            self._scan(len(obj) * _ITEM_BYTES[type(obj)])
        del obj[lower:upper:step]

    def delitem(self, obj: Any, key: Any) -> None:
        self._charge(HOOK_GAS)
        kind = type(obj)
        if kind is list or kind is bytearray:  # the tail moves down
            self._scan(len(obj) * _ITEM_BYTES[kind])
        elif kind is dict:
            self.key(key)
        del obj[key]

    def spread(self, value: Any) -> Any:
        """`*value` in a call or display, `a, *b = value`: C code consumes all of it."""
        self._charge(HOOK_GAS)
        kind = type(value)
        if kind in _ITEM_BYTES or kind is range or kind in _VIEWS:
            self._build(len(value), list)
            self._items(len(value))
            return value
        return tuple(self.each(value))

    def spread_map(self, value: Any) -> Any:
        """`**value` in a call or dict display."""
        self._charge(HOOK_GAS)
        if type(value) is dict:
            self._items(len(value))
        return value

    # ---- text: only values whose text is the same on every node ----

    def _text_size(self, value: Any) -> int:
        """Check that every part of `value` has a deterministic text form, charge for it and
        return an upper bound of the text's length."""
        todo = [value]
        pop, push, mark = todo.pop, todo.extend, todo.append
        size = units = depth = 0
        while todo:
            item = pop()
            if item is _UP:
                depth -= 1
                continue
            kind = type(item)
            units += 1
            if kind in _NESTS and item:
                depth += 1
                if depth > MAX_NESTING:
                    raise self._halt(NestingTooDeep)
                mark(_UP)
            if kind is str:
                size += 2 + 10 * len(item)  # repr escapes a character in up to 10
                units += len(item) >> 5
            elif kind is int or kind is bool:
                digits = self._digits(item)
                size += digits + 1
            elif kind is bytes or kind is bytearray:
                size += 14 + 4 * len(item)
                units += len(item) >> 5
            elif item is None:
                size += 4
            elif kind is list or kind is tuple:
                size += 2 + 2 * len(item)
                push(item)
            elif kind is dict:
                size += 2 + 4 * len(item)
                push(item)
                push(item.values())
            elif kind in _VIEWS:
                size += 12 + 2 * len(item)
                push(item)
            elif kind is range:
                size += 9 + self._digits(item.start) + self._digits(item.stop)
                size += self._digits(item.step)
            elif isinstance(item, BaseException):
                size += 2 + len(kind.__name__)
                push(item.args)
            else:
                raise NoTextForm(
                    f"{kind.__name__} object has no deterministic text form (only numbers, "
                    "strings, bytes, None, ranges, exceptions and lists, tuples and dicts of them)"
                )
            if units >= _CHUNK:
                self._charge(UNIT_GAS * units)
                units = 0
            if size > MAX_ALLOCATION:
                raise self._halt(AllocationTooLarge)
        self._charge(UNIT_GAS * units)
        self._build(size)
        return size

    def _digits(self, value: int) -> int:
        """Decimal digits of `value`, charged; refused past MAX_STR_DIGITS like CPython does."""
        bits = value.bit_length()
        if bits <= 64:
            return 20
        digits = bits * 30103 // 100_000 + 1
        if digits > MAX_STR_DIGITS:
            raise ValueError(
                f"Exceeds the limit ({MAX_STR_DIGITS} digits) for integer string conversion"
            )
        self._charge(digits_gas(digits))
        return digits

    def str_of(self, value: Any) -> str:
        kind = type(value)
        if kind is str:
            return str(value)
        if kind is int:
            self._digits(value)
            return str(value)
        self._text_size(value)
        return str(value)

    def repr_of(self, value: Any) -> str:
        self._text_size(value)
        return repr(value)

    def text(self, value: Any, conversion: int = -1, spec: str = "") -> str:
        """One `{value!conversion:spec}` field of an f-string."""
        self._charge(HOOK_GAS)
        if conversion == 114:  # !r
            value = self.repr_of(value)
        elif conversion == 115:  # !s
            value = self.str_of(value)
        elif conversion == 97:  # !a
            self._text_size(value)
            value = ascii(value)
        if not spec:
            return value if type(value) is str else self.str_of(value)
        width = self._spec(spec)
        kind = type(value)
        if kind is int or kind is bool:
            self._build(self._digits(value) * 2 + width)
        elif kind is str:
            self._build(len(value) + width)
        else:
            raise NoTextForm(f"unsupported format string passed to {kind.__name__}.__format__")
        return format(value, spec)

    def _spec(self, spec: str) -> int:
        """The largest width or precision in a format spec, bounded."""
        largest = 0
        for number in _SPEC_NUMBER.findall(spec):
            if len(number) > 8 or int(number) > MAX_ALLOCATION:
                raise self._halt(AllocationTooLarge)
            largest = max(largest, int(number))
        return largest

    def percent(self, template: Any, args: Any) -> Any:
        """`template % args` for str and bytes: widths fixed and bounded, texts deterministic."""
        self._charge(2 * HOOK_GAS)  # a regular expression runs over the template
        pattern = _PERCENT_STR if type(template) is str else _PERCENT_BYTES
        self._search(len(template), 1)
        size = len(template) + self._text_size(args)
        star = b"*" if type(template) is not str else "*"
        for match in pattern.finditer(template):
            width, precision = match.group(1), match.group(2)
            if width == star or precision == star:
                raise ValueError("'*' widths are not available to apps; write the width")
            for number in (width, precision):
                if number and (len(number) > 8 or int(number) > MAX_ALLOCATION):
                    raise self._halt(AllocationTooLarge)
                size += int(number) if number else 0
        self._build(size)
        return template % args

    # ---- methods of builtin values: a reviewed table, each entry priced ----

    def attr(self, obj: Any, name: str) -> Any:
        """`obj.name` where `name` is also the name of a method of a builtin type."""
        table = _METHODS.get(type(obj))
        if table is None:
            _unpriced(obj, name)
            return getattr(obj, name)
        method = table.get(name)
        if method is None:
            raise _refused(obj, name)
        if method is _DATA:
            return getattr(obj, name)

        def bound(*args: Any, **kwargs: Any) -> Any:
            return method(self, obj, args, kwargs)

        return bound

    def method(self, obj: Any, name: str, /, *args: Any, **kwargs: Any) -> Any:
        """`obj.name(...)`, `name` being also the name of a method of a builtin type."""
        table = _METHODS.get(type(obj))
        if table is None:
            _unpriced(obj, name)
            return getattr(obj, name)(*args, **kwargs)
        method = table.get(name)
        if method is None or method is _DATA:
            return self.attr(obj, name)(*args, **kwargs)
        return method(self, obj, args, kwargs)

    # ---- builtins that build, consume or convert (the sandbox's app builtins call these) ----

    def to_int(self, *args: Any, **kwargs: Any) -> int:
        self._charge(HOOK_GAS)
        if not args and not kwargs:
            return 0
        value = _arg(args, kwargs, 0, "x", 0)
        if isinstance(value, (str, bytes, bytearray)):
            base = _arg(args, kwargs, 1, "base", 10)
            if isinstance(base, int) and base in (2, 4, 8, 16, 32):
                if len(value) > MAX_INT_BITS // 4 + 64:  # at most 5 bits per digit, bounded
                    raise self._halt(AllocationTooLarge)
                self._scan(len(value))
            else:
                self._charge(digits_gas(min(len(value), MAX_STR_DIGITS + 64)))
                if len(value) > MAX_STR_DIGITS + 64:
                    raise ValueError(
                        f"Exceeds the limit ({MAX_STR_DIGITS} digits) for integer string conversion"
                    )
        result = int(*args, **kwargs)
        return result if result.bit_length() <= _FREE_BITS else self._big_int(result)

    def to_str(self, *args: Any, **kwargs: Any) -> str:
        self._charge(HOOK_GAS)
        if len(args) + len(kwargs) <= 1 and not (kwargs.keys() - {"object"}):
            value = args[0] if args else kwargs.get("object", "")
            return self.str_of(value)
        data = _arg(args, kwargs, 0, "object", b"")
        self._codec(
            _arg(args, kwargs, 1, "encoding", "utf-8"), _arg(args, kwargs, 2, "errors", "strict")
        )
        if isinstance(data, (bytes, bytearray)):
            self._build(4 * len(data))
        return str(*args, **kwargs)

    def to_bytes(self, kind: type, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """`bytes(...)` and `bytearray(...)`."""
        self._charge(HOOK_GAS)
        if not args and not kwargs:
            return kind()
        source = _arg(args, kwargs, 0, "source", b"")
        if isinstance(source, int):
            self._build(max(source, 0))
        elif isinstance(source, str):
            self._codec(
                _arg(args, kwargs, 1, "encoding", "utf-8"),
                _arg(args, kwargs, 2, "errors", "strict"),
            )
            self._build(4 * len(source))
        elif isinstance(source, (bytes, bytearray)):
            self._build(len(source))
        else:
            items = self.spread(source)
            self._build(len(items))
            args = (items, *args[1:])
            kwargs = {k: v for k, v in kwargs.items() if k != "source"}
        return kind(*args, **kwargs)

    def to_list(self, kind: type, args: tuple[Any, ...]) -> Any:
        """`list(x)` and `tuple(x)`."""
        self._charge(HOOK_GAS)
        if not args:
            return kind()
        (source,) = args
        return kind(self.spread(source))

    def to_dict(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[Any, Any]:
        self._charge(HOOK_GAS)
        if args:
            (source,) = args
            if type(source) is dict:
                self._items(len(source))
                self._build(len(source), dict)
            else:
                pairs = self.spread(source)
                self._build(len(pairs), dict)
                self.walk(pairs)  # each key is hashed, each pair unpacked
                args = (pairs,)
        self._items(len(kwargs))
        return dict(*args, **kwargs)

    def sum(self, iterable: Iterable[Any], /, start: Any = 0) -> Any:
        self._charge(HOOK_GAS)
        total = start
        for item in self.each(iterable):
            total = self.add(total, item)
        return total

    def any(self, iterable: Iterable[Any], /) -> bool:
        self._charge(HOOK_GAS)
        return any(self.each(iterable))

    def all(self, iterable: Iterable[Any], /) -> bool:
        self._charge(HOOK_GAS)
        return all(self.each(iterable))

    def filter(self, function: Any, iterable: Iterable[Any], /) -> Iterator[Any]:
        self._charge(HOOK_GAS)
        for item in self.each(iterable):
            if item if function is None else function(item):
                yield item

    def _keyed(self, items: Any, key: Any) -> list[Any]:
        """The values an ordering compares: the items, or their keys (each key called once)."""
        keys = list(items) if key is None else [key(item) for item in self.each(items)]
        self.walk(keys)
        return keys

    def _extreme(
        self, choose: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        self._charge(HOOK_GAS)
        if not args:
            raise TypeError(f"{choose.__name__} expected at least 1 argument, got 0")
        items = self.spread(args[0] if len(args) == 1 else args)
        keys = self._keyed(items, kwargs.get("key"))
        extra = {"default": kwargs["default"]} if "default" in kwargs else {}
        if not items and extra:
            return extra["default"]
        index = choose(range(len(keys)), key=keys.__getitem__, **extra)
        return items[index]

    def min(self, *args: Any, **kwargs: Any) -> Any:
        return self._extreme(min, args, kwargs)

    def max(self, *args: Any, **kwargs: Any) -> Any:
        return self._extreme(max, args, kwargs)

    def _order(self, items: Any, key: Any, reverse: Any) -> list[int] | None:
        """The sorted order of `items` by `key`, n log n comparisons charged first."""
        keys = self._keyed(items, key)
        rounds = max(len(keys), 1).bit_length()
        self._items(len(keys) * rounds)
        if key is None:
            return None
        return sorted(range(len(keys)), key=keys.__getitem__, reverse=bool(reverse))

    def sorted(
        self, iterable: Iterable[Any], /, *, key: Any = None, reverse: Any = False
    ) -> list[Any]:
        self._charge(HOOK_GAS)
        items = list(self.spread(iterable))
        order = self._order(items, key, reverse)
        if order is None:
            return sorted(items, reverse=bool(reverse))
        return [items[i] for i in order]

    def class_call(
        self, kind: type, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        """`int.from_bytes(...)`, `bytes.fromhex(...)`, `dict.fromkeys(...)`."""
        self._charge(HOOK_GAS)
        if kind is int and name == "from_bytes":
            data = _arg(args, kwargs, 0, "bytes", b"")
            if not isinstance(data, (bytes, bytearray)):
                raise TypeError("int.from_bytes takes bytes or a bytearray here")
            if len(data) * 8 > MAX_INT_BITS:
                raise self._halt(AllocationTooLarge)
            self._scan(len(data))
            self._build(len(data))
            return int.from_bytes(*args, **kwargs)
        if kind in (bytes, bytearray) and name == "fromhex":
            text = _arg(args, kwargs, 0, "string", "")
            self._scan(len(text) if isinstance(text, str) else 0)
            self._build(len(text) // 2 if isinstance(text, str) else 0)
            return kind.fromhex(*args, **kwargs)
        if kind is dict and name == "fromkeys":
            keys = self.spread(_arg(args, kwargs, 0, "iterable", ()))
            self.walk(keys)
            self._build(len(keys), dict)
            return dict.fromkeys(keys, _arg(args, kwargs, 1, "value", None))
        raise AttributeError(f"{kind.__name__}.{name} is not available to apps")

    def _codec(self, encoding: Any, errors: Any) -> None:
        if not isinstance(encoding, str) or encoding.lower().replace("_", "-") not in _ENCODINGS:
            raise LookupError("apps may use the utf-8, ascii and latin-1 encodings only")
        if errors not in _ERRORS:
            raise LookupError("apps may use the strict, ignore and replace error handlers only")


def _unpriced(obj: Any, name: str) -> None:
    """Builtin values outside the table (subclass instances) and builtin types themselves
    (`bool.to_bytes`, `range.count`: unbound methods) have no priced methods."""
    if isinstance(obj, _VALUE_TYPES) or (isinstance(obj, type) and issubclass(obj, _VALUE_TYPES)):
        raise _refused(obj, name)


def _refused(obj: Any, name: str) -> AttributeError:
    owner = obj.__name__ if isinstance(obj, type) else type(obj).__name__
    return AttributeError(f"{owner}.{name} is not available to apps")


def _iterable(value: Any) -> bool:
    try:
        iter(value)
    except TypeError:
        return False
    return True


def _no_set(a: Any, b: Any) -> None:
    if type(a) in _VIEWS or type(b) in _VIEWS:
        raise TypeError(
            "set operations on dict views make sets, whose order differs between "
            "processes; use a dict or a list"
        )


# ---- the method table --------------------------------------------------------------------------
#
# Every method app code may call on a builtin value, with its price. A name missing here is
# refused on builtin values (app objects keep their own attributes of the same name).

_Method = Callable[[GasMeter, Any, tuple[Any, ...], dict[str, Any]], Any]
_DATA: _Method = lambda meter, obj, args, kwargs: None  # noqa: E731 - a marker: plain data


def _priced(
    name: str, price: Callable[[GasMeter, Any, tuple[Any, ...], dict[str, Any]], None]
) -> _Method:
    def method(meter: GasMeter, obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        meter._charge(HOOK_GAS)
        price(meter, obj, args, kwargs)
        return getattr(obj, name)(*args, **kwargs)

    return method


def _free(meter: GasMeter, obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    pass


def _scan_self(meter: GasMeter, obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    meter._scan(len(obj))


def _copy_self(meter: GasMeter, obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    meter._build(len(obj), type(obj))


def _recase(meter: GasMeter, obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    meter._build(len(obj) * (3 if type(obj) is str else 1))  # "ß".upper() == "SS"


def _search(meter: GasMeter, obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    needle = args[0] if args else None
    meter._search(len(obj), len(needle) if isinstance(needle, _TEXTS) else 1)


def _affix(meter: GasMeter, obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    meter.walk(args[0] if args else None)  # startswith(prefix or tuple of prefixes)


def _strip(meter: GasMeter, obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    chars = _arg(args, kwargs, 0, "chars", None)
    meter._scan(len(obj) * (1 + (len(chars) if isinstance(chars, _TEXTS) else 0)))


def _pad(meter: GasMeter, obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    width = _arg(args, kwargs, 0, "width", 0)
    meter._build(max(width, len(obj)) if isinstance(width, int) else len(obj))


def _expandtabs(meter: GasMeter, obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    size = _arg(args, kwargs, 0, "tabsize", 8)
    meter._build(len(obj) * max(size, 1) if isinstance(size, int) else len(obj))


def _split(meter: GasMeter, obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    sep = _arg(args, kwargs, 0, "sep", None)
    limit = _arg(args, kwargs, 1, "maxsplit", -1)
    if isinstance(sep, _TEXTS) and sep:
        meter._search(len(obj), len(sep))
        pieces = obj.count(sep) + 1
    else:
        meter._scan(len(obj))
        pieces = len(obj) // 2 + 1
    if isinstance(limit, int) and limit >= 0:
        pieces = min(pieces, limit + 1)
    meter._items(pieces)
    meter._build(len(obj) + pieces, list)


def _splitlines(meter: GasMeter, obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    meter._items(len(obj) + 1)
    meter._build(len(obj) + 1, list)


def _replace(meter: GasMeter, obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    old, new = _arg(args, kwargs, 0, "old", None), _arg(args, kwargs, 1, "new", None)
    limit = _arg(args, kwargs, 2, "count", -1)
    if not (isinstance(old, _TEXTS) and isinstance(new, _TEXTS)):
        return  # the method raises its own TypeError
    meter._search(len(obj), len(old))
    found = obj.count(old)
    if isinstance(limit, int) and limit >= 0:
        found = min(found, limit)
    meter._items(found)
    meter._build(len(obj) + found * max(len(new) - len(old), 0))


def _codec(meter: GasMeter, obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    meter._codec(
        _arg(args, kwargs, 0, "encoding", "utf-8"), _arg(args, kwargs, 1, "errors", "strict")
    )
    meter._build(4 * len(obj))


def _hex(meter: GasMeter, obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    meter._build(3 * len(obj))


def _to_bytes(meter: GasMeter, obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    length = _arg(args, kwargs, 0, "length", 1)
    meter._build(length if isinstance(length, int) else 0)


def _insert(meter: GasMeter, obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    meter._scan(len(obj) * _ITEM_BYTES[type(obj)])  # the tail moves


def _pop(meter: GasMeter, obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    if args and args[0] != -1:
        meter._scan(len(obj) * _ITEM_BYTES[type(obj)])


def _compare_all(meter: GasMeter, obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    meter.walk(obj)  # each element is compared with the argument
    meter.walk(args[0] if args else None)


def _key_arg(meter: GasMeter, obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    meter.key(args[0] if args else None)


def _range_search(meter: GasMeter, obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    if not (args and isinstance(args[0], int)):
        meter._items(len(obj))


def _disjoint(meter: GasMeter, obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    meter.walk(args[0] if args else None)
    meter._items(len(obj))


def _index(meter: GasMeter, obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    meter._charge(HOOK_GAS)
    _compare_all(meter, obj, args, kwargs)
    try:
        return obj.index(*args, **kwargs)
    except ValueError:  # CPython's message would show the value's repr (an address)
        raise ValueError(f"{type(obj).__name__}.index(x): x not in {type(obj).__name__}") from None


def _extend(meter: GasMeter, obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    meter._charge(HOOK_GAS)
    items = meter.spread(args[0]) if args else ()
    meter._build(len(items), type(obj))
    obj.extend(items)


def _join(meter: GasMeter, obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    meter._charge(HOOK_GAS)
    items = meter.spread(args[0]) if args else ()
    try:
        total = sum(map(len, items))
    except TypeError:
        total = 0  # join raises its own error
    meter._items(len(items))
    meter._build(total + len(obj) * max(len(items) - 1, 0))
    return obj.join(items)


def _sort(meter: GasMeter, obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    meter._charge(HOOK_GAS)
    if args:
        raise TypeError("sort() takes no positional arguments")
    key, reverse = kwargs.get("key"), kwargs.get("reverse", False)
    order = meter._order(obj, key, reverse)
    if order is None:
        obj.sort(reverse=bool(reverse))
    else:
        obj[:] = [obj[i] for i in order]


def _update(meter: GasMeter, obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    meter._charge(HOOK_GAS)
    addition = meter.to_dict(args, kwargs)
    obj.update(addition)


def _fromkeys(meter: GasMeter, obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return meter.class_call(dict, "fromkeys", args, kwargs)


def _text_methods(kind: type) -> dict[str, _Method]:
    prices = {
        "count": _search,
        "find": _search,
        "rfind": _search,
        "index": _search,
        "rindex": _search,
        "partition": _search,
        "rpartition": _search,
        "startswith": _affix,
        "endswith": _affix,
        "removeprefix": _copy_self,
        "removesuffix": _copy_self,
        "split": _split,
        "rsplit": _split,
        "splitlines": _splitlines,
        "replace": _replace,
        "strip": _strip,
        "lstrip": _strip,
        "rstrip": _strip,
        "ljust": _pad,
        "rjust": _pad,
        "center": _pad,
        "zfill": _pad,
        "expandtabs": _expandtabs,
        "lower": _recase,
        "upper": _recase,
        "swapcase": _recase,
        "title": _recase,
        "capitalize": _recase,
        "isalnum": _scan_self,
        "isalpha": _scan_self,
        "isascii": _scan_self,
        "isdigit": _scan_self,
        "islower": _scan_self,
        "isupper": _scan_self,
        "isspace": _scan_self,
        "istitle": _scan_self,
    }
    if kind is str:
        prices |= {
            "encode": _codec,
            "casefold": _recase,
            "isdecimal": _scan_self,
            "isnumeric": _scan_self,
            "isidentifier": _scan_self,
            "isprintable": _scan_self,
        }
    else:
        prices |= {"decode": _codec, "hex": _hex}
    table = {name: _priced(name, price) for name, price in prices.items()}
    table["join"] = _join
    return table


def _list_methods(kind: type) -> dict[str, _Method]:
    prices = {
        "append": _free,
        "insert": _insert,
        "pop": _pop,
        "remove": _compare_all,
        "count": _compare_all,
        "reverse": _scan_self,
        "copy": _copy_self,
        "clear": _free,
    }
    table = {name: _priced(name, price) for name, price in prices.items()}
    return table | {"index": _index, "extend": _extend, "sort": _sort}


_INT_METHODS: dict[str, _Method] = {
    "bit_length": _priced("bit_length", _free),
    "bit_count": _priced("bit_count", _free),
    "to_bytes": _priced("to_bytes", _to_bytes),
}
_BYTEARRAY_METHODS = (
    _text_methods(bytearray)
    | {
        name: _priced(name, price)
        for name, price in {
            "append": _free,
            "insert": _insert,
            "pop": _pop,
            "remove": _insert,
            "reverse": _scan_self,
            "copy": _copy_self,
            "clear": _free,
        }.items()
    }
    | {"extend": _extend}
)
_METHODS: dict[type, dict[str, _Method]] = {
    int: _INT_METHODS,
    bool: _INT_METHODS,
    str: _text_methods(str),
    bytes: _text_methods(bytes),
    bytearray: _BYTEARRAY_METHODS,
    list: _list_methods(list),
    tuple: {"count": _priced("count", _compare_all), "index": _index},
    dict: {
        **{name: _priced(name, _key_arg) for name in ("get", "pop", "setdefault")},
        **{name: _priced(name, _free) for name in ("keys", "values", "items", "popitem", "clear")},
        "copy": _priced("copy", _copy_self),
        "update": _update,
        "fromkeys": _fromkeys,
    },
    range: {
        "start": _DATA,
        "stop": _DATA,
        "step": _DATA,
        "index": _priced("index", _range_search),
        "count": _priced("count", _range_search),
    },
    **{view: {"isdisjoint": _priced("isdisjoint", _disjoint)} for view in _VIEWS},
}
# Builtin value types: on these, only the names above exist for apps.
_VALUE_TYPES = (int, str, bytes, bytearray, list, tuple, dict, range, *_VIEWS)
# Every name any of them has: app code reaches these through `attr`/`method`.
ROUTED_NAMES = frozenset(
    name for kind in _VALUE_TYPES for name in dir(kind) if not name.startswith("_")
)
# The reviewed ones, for the sandbox's attribute allowlist.
PRICED_NAMES = frozenset(name for table in _METHODS.values() for name in table) | {
    "from_bytes",
    "fromhex",
}


class _Active:
    __slots__ = ("meter",)

    def __init__(self) -> None:
        self.meter: GasMeter | None = None


ACTIVE = _Active()  # the meter of the app call running now (one at a time per process)


def active_meter() -> GasMeter | None:
    return ACTIVE.meter


def set_active_meter(meter: GasMeter | None) -> GasMeter | None:
    """Make `meter` the one SDK functions charge; returns the previous one to restore."""
    previous, ACTIVE.meter = ACTIVE.meter, meter
    return previous
