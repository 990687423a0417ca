"""What app authors import: `App`, storage fields, decorators, events and errors.

    class Token(App):
        balances = Map(address, uint256)          # storage slot 0, Solidity's mapping layout

        @view
        def balanceOf(self, owner: address) -> uint256:
            return self.balances[owner]

        @method
        def transfer(self, to: address, amount: uint256) -> bool:
            ...
            self.emit(Transfer(self.msg.sender, to, amount))

Cross-app calls (vm/bus.py has the semantics): `self.send(chain, to, "credit(address,uint256)",
owner, amount, callback=self.on_credit)` sends a call to the app at `to` on chain `chain` and
returns its message id; the result comes back later to a `@callback` method
`on_credit(self, msg_id: bytes32, ok: bool, data: bytes)`, once. At the destination the caller is
`remote_address(chain, sender)`.

Fields take storage slots in declaration order, laid out as Solidity does (mapping value at
keccak(key ++ slot), nested for tuple keys), so eth_getStorageAt and storage proofs read a
native app like a contract. Word values are stored as minimal big-endian integers.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from rollup import manifest, messages
from rollup.crypto import keccak
from rollup.errors import ExecutionError
from rollup.types import Address, BlockEnv, Hash32, Log
from vm.bridge import WithdrawError, bridged_token_origin, start_withdrawal, withdrawal_log
from vm.bus import DEFAULT_CALL_GAS, DEFAULT_CALLBACK_GAS, DEFAULT_TTL, SendError, send_call
from vm.interface import WithdrawalRequest
from vm.native.abi import AbiError, decode_args, encode_values, is_static_word, selector
from vm.native.gas import WORD_GAS, active_meter
from vm.native.types import Indexed, abi_type_of

__all__ = [
    "App",
    "Map",
    "Value",
    "Event",
    "Error",
    "Revert",
    "Panic",
    "method",
    "view",
    "payable",
    "callback",
    "revert",
    "require",
    "remote_address",
    "app_address",
    "abi_decode",
    "Msg",
    "CallContext",
    "MethodSpec",
]

F = TypeVar("F", bound=Callable[..., Any])


# ---- errors an app raises ------------------------------------------------------------------


class Revert(ExecutionError):
    """Abort the call; `data` is the ABI revert payload."""

    def __init__(self, data: bytes, reason: str | None = None) -> None:
        super().__init__(reason or data.hex())
        self.data, self.reason = data, reason


_ERROR_STRING = selector("Error(string)")
_PANIC = selector("Panic(uint256)")


def revert(reason: str = "") -> typing.NoReturn:
    if type(reason) is not str:
        raise TypeError(f"revert reason must be a str, not {type(reason).__name__}")
    _charge_bytes(len(reason))
    raise Revert(_ERROR_STRING + encode_values(["string"], [reason]), reason)


def require(condition: object, reason: str = "") -> None:
    if not condition:
        revert(reason)


def _charge_bytes(size: int) -> None:
    """SDK work on app data that grows with it (hashing, encoding), for calls without `self`."""
    meter = active_meter()
    if meter is not None and size > 64:
        meter.charge(WORD_GAS * (size >> 5))


def app_address(name: str) -> Address:
    """Where the native app named `name` lives (rollup.manifest.app_address)."""
    if type(name) is not str or len(name) > 256:
        raise TypeError("app_address takes an app name: a str of at most 256 characters")
    return manifest.app_address(name)


def remote_address(chain_id: int, sender: bytes) -> Address:
    """The `msg.sender` a destination app sees for `sender` on chain `chain_id`
    (rollup.messages.remote_address)."""
    if not isinstance(chain_id, int) or not isinstance(sender, (bytes, bytearray)):
        raise TypeError("remote_address takes a chain id and a 20-byte address")
    if len(sender) != 20:
        raise TypeError("remote_address takes a 20-byte address")
    return messages.remote_address(chain_id, bytes(sender))


def encode_checked(types: typing.Sequence[str], values: typing.Sequence[Any]) -> bytes:
    """`encode_values` for values app code made. Word types (address, bool, intN) encode or
    fail at once; bytesN and dynamic types are checked first (`bytes(n)` would build n bytes,
    a long value costs its size). An encoder's error is replaced by `check_abi_values`'s,
    which names types only: library messages print values (an object's memory address)."""
    if _needs_check(types if type(types) is tuple else tuple(types)):
        check_abi_values(types, values)
    try:
        return encode_values(types, values)
    except (AbiError, TypeError, ValueError, OverflowError):
        check_abi_values(types, values)
        raise TypeError("cannot ABI-encode these values") from None


@functools.lru_cache(maxsize=1024)
def _needs_check(types: tuple[str, ...]) -> bool:
    return not all(is_static_word(t) and not t.startswith("bytes") for t in types)


def check_abi_values(types: typing.Sequence[str], values: typing.Sequence[Any]) -> None:
    """Raise TypeError, naming types only, unless `values` encode as `types`; what it checks is
    charged to the active meter first. Library encoders never see other values: their errors
    would print an app object's repr (a memory address) and `bytes(n)` would build n bytes."""
    meter = active_meter()
    if meter is not None and not all(is_static_word(t) for t in types):
        meter.walk(values)
    if len(types) != len(values):
        raise TypeError(f"expected {len(types)} values, got {len(values)}")
    for abi_type, value in zip(types, values, strict=True):
        _check_abi(abi_type, value)


def _check_abi(abi_type: str, value: Any) -> None:
    kind = type(value).__name__
    if abi_type.endswith("]"):
        inner, size = abi_type[: abi_type.rindex("[")], abi_type[abi_type.rindex("[") + 1 : -1]
        if not isinstance(value, (list, tuple)) or (size and len(value) != int(size)):
            raise TypeError(f"{abi_type} value expected, got {kind}")
        for item in value:
            _check_abi(inner, item)
    elif abi_type.startswith("("):
        members = _split_types(abi_type[1:-1])
        if not isinstance(value, (list, tuple)) or len(value) != len(members):
            raise TypeError(f"{abi_type} value expected, got {kind}")
        for member, item in zip(members, value, strict=True):
            _check_abi(member, item)
    elif abi_type == "string":
        if not isinstance(value, str):
            raise TypeError(f"string value expected, got {kind}")
    elif abi_type == "bool":
        if not isinstance(value, int):
            raise TypeError(f"bool value expected, got {kind}")
    elif abi_type == "address":
        if not (isinstance(value, (bytes, bytearray)) and len(value) == 20):
            raise TypeError(f"address value expected (20 bytes), got {kind}")
    elif abi_type.startswith("bytes"):
        width = int(abi_type[5:]) if abi_type != "bytes" else None
        if not isinstance(value, (bytes, bytearray)) or (width is not None and len(value) > width):
            raise TypeError(f"{abi_type} value expected, got {kind}")
    elif abi_type.startswith(("uint", "int")):
        if not isinstance(value, int):
            raise TypeError(f"{abi_type} value expected, got {kind}")
        bits = int(abi_type[4:] if abi_type.startswith("uint") else abi_type[3:])
        signed = abi_type.startswith("int")
        low, high = (-(1 << (bits - 1)), 1 << (bits - 1)) if signed else (0, 1 << bits)
        if not low <= value < high:
            raise TypeError(f"value out of range for {abi_type}")


class Panic(Revert):
    """Solidity-style panic: 0x11 arithmetic overflow, 0x12 division by zero, 0x01 assert."""

    def __init__(self, code: int) -> None:
        super().__init__(_PANIC + code.to_bytes(32, "big"), f"panic: 0x{code:02x}")
        self.code = code


def _field_hints(cls: type) -> list[tuple[str, str, bool]]:
    """(abi name, abi type, indexed) of the annotated fields of an event or error class: those
    the app's classes declare, not the ones of the bases an error shares with the node's own
    (`RollupError.message`)."""
    own = [inspect.get_annotations(c) for c in cls.__mro__ if issubclass(c, _Declared)]
    declared = {name for annotations in own for name in annotations}
    fields = []
    for name, hint in typing.get_type_hints(cls, include_extras=True).items():
        if name.startswith("_") or typing.get_origin(hint) is ClassVar or name not in declared:
            continue
        is_indexed = isinstance(hint, Indexed)
        inner = hint.inner if is_indexed else hint
        fields.append((name.rstrip("_"), abi_type_of(inner), is_indexed))
    return fields


class _Declared:
    """Base of events and errors: positional or keyword fields, ABI signature from hints."""

    _fields: ClassVar[tuple[tuple[str, str, bool], ...]] = ()
    _rollup_types: ClassVar[tuple[str, ...]] = ()
    _rollup_check: ClassVar[bool] = False
    _rollup_topic0: ClassVar[bytes] = b""
    _signature: ClassVar[str] = ""

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        cls._fields = tuple(_field_hints(cls))
        cls._rollup_types = tuple(t for _, t, _ in cls._fields)
        cls._rollup_check = _needs_check(cls._rollup_types)
        cls._signature = f"{cls.__name__}({','.join(t for _, t, _ in cls._fields)})"
        cls._rollup_topic0 = keccak(cls._signature.encode())

    def _bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
        names = [name for name, _, _ in self._fields]
        if len(args) > len(names):
            raise TypeError(f"{type(self).__name__} takes {len(names)} fields")
        values = dict(zip(names, args, strict=False))
        for key, value in kwargs.items():
            values[key.rstrip("_")] = value
        missing = [n for n in names if n not in values]
        if missing:
            raise TypeError(f"{type(self).__name__} is missing {', '.join(missing)}")
        return [values[n] for n in names]


class Event(_Declared):
    """An event: `self.emit(Transfer(sender, to, amount))` appends an Ethereum log."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.values = self._bind(args, kwargs)

    @classmethod
    def topic0(cls) -> bytes:
        return cls._rollup_topic0

    def to_log(self, address: Address) -> Log:
        """The log; values are checked as `encode_checked` does."""
        if self._rollup_check:
            check_abi_values(self._rollup_types, self.values)
        try:
            return self._log(address)
        except (AbiError, TypeError, ValueError, OverflowError):
            check_abi_values(self._rollup_types, self.values)
            raise TypeError(f"{type(self).__name__}: cannot ABI-encode these values") from None

    def _log(self, address: Address) -> Log:
        topics = [Hash32(self._rollup_topic0)]
        data_types, data_values = [], []
        for (_, abi_type, is_indexed), value in zip(self._fields, self.values, strict=True):
            if not is_indexed:
                data_types.append(abi_type)
                data_values.append(value)
            elif is_static_word(abi_type):
                topics.append(Hash32(encode_values([abi_type], [value])))
            else:
                raw = value.encode() if isinstance(value, str) else bytes(value)
                topics.append(Hash32(keccak(raw)))
        return Log(address, tuple(topics), encode_values(data_types, data_values))


class Error(_Declared, Revert):
    """A custom error: `raise InsufficientBalance(have, want)` reverts with its ABI encoding."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        values = self._bind(args, kwargs)
        data = selector(self._signature) + encode_checked([t for _, t, _ in self._fields], values)
        Revert.__init__(self, data, self._signature)


# ---- call context --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Msg:
    sender: Address
    value: int
    data: bytes
    origin: Address


class CallContext:
    """What one call of an app sees: state access, the message, the block, emitted logs and
    cross-app messages."""

    __slots__ = ("state", "address", "msg", "block", "logs", "meter", "messages")

    def __init__(self, state: Any, address: Address, msg: Msg, block: BlockEnv, meter: Any):
        self.state, self.address, self.msg, self.block = state, address, msg, block
        self.logs: list[Log] = []
        self.meter = meter
        self.messages: list[Any] = []  # rollup.messages.CrossMessage


# ---- storage fields ------------------------------------------------------------------------


def _key_encoder(abi_type: str) -> Callable[[Any], bytes]:
    """How Solidity pads a mapping key of this type before hashing it with the slot. Each
    checks the key's type first: nothing app-made is converted (`str(x)`, `bytes(n)`)."""
    if abi_type == "string":
        return _string_key
    if abi_type == "bytes":
        return _bytes_key
    if abi_type.startswith("bytes"):
        size = int(abi_type[5:])
        return lambda key: _fixed_bytes(key, size, "map key").ljust(32, b"\x00")
    if abi_type == "address":
        return _address_key
    if abi_type == "bool":
        return lambda key: (1 if key else 0).to_bytes(32, "big")
    if abi_type.startswith("int"):
        return lambda key: _int(key, "map key").to_bytes(32, "big", signed=True)
    return lambda key: _int(key, "map key").to_bytes(32, "big")


def _string_key(key: Any) -> bytes:
    if not isinstance(key, str):
        raise TypeError(f"map key of type {type(key).__name__} is not a str")
    _charge_bytes(len(key))
    return key.encode()


def _bytes_key(key: Any) -> bytes:
    if not isinstance(key, (bytes, bytearray)):
        raise TypeError(f"map key of type {type(key).__name__} is not bytes")
    _charge_bytes(len(key))
    return bytes(key)


def _fixed_bytes(value: Any, size: int, what: str) -> bytes:
    if not isinstance(value, (bytes, bytearray)) or len(value) > size:
        raise TypeError(f"{what} of type {type(value).__name__} is not bytes{size}")
    return bytes(value)


def _int(value: Any, what: str) -> int:
    if not isinstance(value, int):
        raise TypeError(f"{what} of type {type(value).__name__} is not an integer")
    return value


def _address_key(key: Any) -> bytes:
    if not isinstance(key, (bytes, bytearray)) or len(key) != 20:
        raise TypeError(f"map key of type {type(key).__name__} is not a 20-byte address")
    return _ADDRESS_PAD + bytes(key)


_ADDRESS_PAD = bytes(12)


def _address_arg(value: Any) -> Address:
    if not isinstance(value, (bytes, bytearray)) or len(value) != 20:
        raise TypeError(f"argument of type {type(value).__name__} is not a 20-byte address")
    return Address(bytes(value))


def _value_encoder(abi_type: str) -> Callable[[Any], bytes]:
    """Words are stored as minimal big-endian integers (zero is no value at all)."""
    if abi_type.startswith("uint"):
        bits = int(abi_type[4:])

        def encode_uint(value: Any) -> bytes:
            if type(value) is not int and (not isinstance(value, int) or isinstance(value, bool)):
                raise TypeError(f"{abi_type} field got a {type(value).__name__}")
            if value < 0 or value.bit_length() > bits:
                raise Panic(0x11)
            return value.to_bytes((value.bit_length() + 7) // 8, "big")

        return encode_uint
    if abi_type.startswith("int"):
        return lambda value: (
            b""
            if value == 0
            else _int(value, f"{abi_type} field value").to_bytes(32, "big", signed=True)
        )
    if abi_type == "bool":
        return lambda value: b"\x01" if value else b""
    if abi_type == "string":
        return _encode_string
    if abi_type == "address":
        return _encode_address
    if abi_type == "bytes":
        return _encode_bytes
    size = int(abi_type[5:])
    return lambda value: _fixed_bytes(value, size, f"{abi_type} field value")


def _encode_string(value: Any) -> bytes:
    if not isinstance(value, str):
        raise TypeError(f"string field got a {type(value).__name__}")
    return value.encode()


def _encode_bytes(value: Any) -> bytes:
    if not isinstance(value, (bytes, bytearray)):
        raise TypeError(f"bytes field got a {type(value).__name__}")
    return bytes(value)


def _encode_address(value: Any) -> bytes:
    if not (isinstance(value, (bytes, bytearray)) and len(value) == 20):
        raise TypeError(f"address field got a {type(value).__name__} that is not 20 bytes")
    return bytes(value) if any(value) else b""


def _value_decoder(abi_type: str) -> Callable[[bytes | None], Any]:
    if abi_type.startswith("uint"):
        return lambda raw: int.from_bytes(raw, "big") if raw else 0
    if abi_type.startswith("int"):
        return lambda raw: int.from_bytes(raw, "big", signed=True) if raw else 0
    if abi_type == "bool":
        return bool
    if abi_type == "string":
        return lambda raw: raw.decode() if raw else ""
    if abi_type == "address":
        return lambda raw: Address(raw.rjust(20, b"\x00")) if raw else Address(bytes(20))
    if abi_type.startswith("bytes") and abi_type != "bytes":
        size = int(abi_type[5:])
        return lambda raw: (raw or b"").ljust(size, b"\x00")
    return lambda raw: raw or b""


class _Field:
    slot: bytes = b""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name


class Value(_Field):
    """One stored value at the field's slot."""

    def __init__(self, value_type: Any) -> None:
        self.abi = abi_type_of(value_type)
        self.encode, self.decode = _value_encoder(self.abi), _value_decoder(self.abi)
        self._rollup_dynamic = self.abi in ("string", "bytes")  # may be longer than a word

    def __get__(self, app: App | None, owner: type) -> Any:
        if app is None:
            return self
        ctx = app._ctx
        raw = ctx.meter.read(ctx.state, ctx.address, self.slot)
        if self._rollup_dynamic and raw is not None and len(raw) > 32:
            ctx.meter.long_value(len(raw), False)
        return self.decode(raw)

    def __set__(self, app: App, value: Any) -> None:
        ctx = app._ctx
        raw = self.encode(value)
        ctx.meter.write(ctx.state, ctx.address, self.slot, raw)
        if self._rollup_dynamic and len(raw) > 32:
            ctx.meter.long_value(len(raw), True)


class Map(_Field):
    """A mapping; a tuple key type `(address, address)` means a nested mapping."""

    _CACHE_LIMIT = 200_000

    def __init__(self, key_type: Any, value_type: Any) -> None:
        keys = key_type if isinstance(key_type, tuple) else (key_type,)
        self.key_abis = tuple(abi_type_of(k) for k in keys)
        self.key_encoders = tuple(_key_encoder(abi) for abi in self.key_abis)
        self.abi = abi_type_of(value_type)
        self.encode, self.decode = _value_encoder(self.abi), _value_decoder(self.abi)
        self._rollup_dynamic = self.abi in ("string", "bytes")
        self._rollup_slots: dict[Any, bytes] = {}  # key -> slot: the keccaks are the hot part

    def __get__(self, app: App | None, owner: type) -> Any:
        if app is None:
            return self
        return _BoundMap(self, app._ctx)

    def slot_of(self, key: Any) -> bytes:
        cacheable = _cacheable(key, len(self.key_encoders))
        if cacheable:
            slot = self._rollup_slots.get(key)
            if slot is not None:
                return slot
        keys = key if len(self.key_encoders) > 1 else (key,)
        if type(keys) is not tuple or len(keys) != len(self.key_encoders):
            raise TypeError(f"map {self.name} takes {len(self.key_encoders)} keys")
        slot = self.slot
        for encode, k in zip(self.key_encoders, keys, strict=True):
            slot = keccak(encode(k) + slot)
        if cacheable:
            if len(self._rollup_slots) >= self._CACHE_LIMIT:
                self._rollup_slots.clear()
            self._rollup_slots[key] = slot
        return slot


def _cacheable(key: Any, arity: int) -> bool:
    """Only small keys of plain types are cached: hashing anything else could cost without
    bound, and the cache lives as long as the process."""
    if arity == 1:
        keys: tuple[Any, ...] = (key,)
    elif type(key) is tuple and len(key) == arity:
        keys = key
    else:
        return False
    for k in keys:
        kind = type(k)
        if kind is int:
            if k.bit_length() > 256:
                return False
        elif kind is bytes or kind is str:
            if len(k) > 64:
                return False
        else:
            return False
    return True


class _BoundMap:
    __slots__ = ("_rollup_field", "_rollup_ctx")

    def __init__(self, field: Map, ctx: CallContext) -> None:
        self._rollup_field, self._rollup_ctx = field, ctx

    def __getitem__(self, key: Any) -> Any:
        ctx, field = self._rollup_ctx, self._rollup_field
        slot = field._rollup_slots.get(key) if type(key) is bytes else None  # the hot path
        raw = ctx.meter.read(ctx.state, ctx.address, slot or field.slot_of(key))
        if field._rollup_dynamic and raw is not None and len(raw) > 32:
            ctx.meter.long_value(len(raw), False)
        return field.decode(raw)

    def __setitem__(self, key: Any, value: Any) -> None:
        ctx, field = self._rollup_ctx, self._rollup_field
        slot = field._rollup_slots.get(key) if type(key) is bytes else None
        raw = field.encode(value)
        ctx.meter.write(ctx.state, ctx.address, slot or field.slot_of(key), raw)
        if field._rollup_dynamic and len(raw) > 32:
            ctx.meter.long_value(len(raw), True)


# ---- methods -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MethodSpec:
    name: str
    function: Callable[..., Any]
    arg_names: tuple[str, ...]
    arg_types: tuple[str, ...]
    return_types: tuple[str, ...]
    mutability: str  # "view" | "nonpayable" | "payable"

    @property
    def signature(self) -> str:
        return f"{self.name}({','.join(self.arg_types)})"


def _mark(function: F, mutability: str) -> F:
    function.__rollup_mutability__ = mutability  # type: ignore[attr-defined]
    return function


def method(function: F) -> F:
    """A state-changing method, callable by transactions."""
    return _mark(function, "nonpayable")


def payable(function: F) -> F:
    """A state-changing method that accepts native value."""
    return _mark(function, "payable")


def view(function: F) -> F:
    """A read-only method; writes inside it fail the call."""
    return _mark(function, "view")


CALLBACK_ARGS = ("bytes32", "bool", "bytes")


def callback(function: F) -> F:
    """Receives the result of a cross-app call: `(self, msg_id: bytes32, ok: bool, data: bytes)`,
    `data` being the call's ABI return data, or its revert data when `ok` is false. Only the
    message bus can call it; it runs once per call whatever it does."""
    return _mark(function, "callback")


_MAX_TYPES = 1_024  # characters of a type list or signature app code passes the SDK


def abi_decode(types: str, data: bytes) -> Any:
    """`abi_decode("uint256", data)` -> int; several types (`"uint256,address"`) -> a tuple."""
    if type(types) is not str or len(types) > _MAX_TYPES:
        raise TypeError(f"abi_decode takes ABI types: a str of at most {_MAX_TYPES} characters")
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError(f"abi_decode takes bytes, not {type(data).__name__}")
    _charge_bytes(len(types) + 4 * len(data))  # decoding builds objects of what it reads
    names = _split_types(types)
    values = decode_args(names, bytes(data))
    return values[0] if len(names) == 1 else values


def _split_types(types: str) -> list[str]:
    """`a,(b,c),d` -> ["a", "(b,c)", "d"]."""
    parts: list[str] = []
    depth, start = 0, 0
    for index, char in enumerate(types):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(types[start:index].strip())
            start = index + 1
    tail = types[start:].strip()
    return parts + [tail] if tail else parts


def _calldata(method: str | bytes, args: tuple[Any, ...]) -> bytes:
    if isinstance(method, (bytes, bytearray)):
        if args:
            raise TypeError("send: raw calldata takes no further arguments")
        return bytes(method)
    if type(method) is not str or len(method) > _MAX_TYPES:
        raise TypeError(
            f"send: the method is a signature of at most {_MAX_TYPES} characters or raw calldata"
        )
    sel, types = _signature(method)
    if len(types) != len(args):
        raise TypeError(f"send: {method} takes {len(types)} arguments, got {len(args)}")
    return sel + encode_checked(types, args)


@functools.lru_cache(maxsize=1024)
def _signature(method: str) -> tuple[bytes, tuple[str, ...]]:
    """(selector, argument types) of `name(type,...)`; parsed once per signature."""
    name, paren, rest = method.partition("(")
    if not paren or not rest.endswith(")") or not name:
        raise TypeError(f"send: expected a signature like 'f(address,uint256)', got {method!r}")
    types = tuple(_split_types(rest[:-1]))
    return selector(f"{name}({','.join(types)})"), types


def _return_types(hint: Any) -> tuple[str, ...]:
    if hint is None or hint is type(None):
        return ()
    if typing.get_origin(hint) is tuple:
        return tuple(abi_type_of(a) for a in typing.get_args(hint))
    return (abi_type_of(hint),)


def _spec_of(name: str, function: Callable[..., Any], mutability: str) -> MethodSpec:
    hints = typing.get_type_hints(function)
    params = list(function.__code__.co_varnames[1 : function.__code__.co_argcount])
    missing = [p for p in params if p not in hints]
    if missing:
        raise TypeError(f"{name}: parameters {missing} need ABI type hints")
    return MethodSpec(
        name=name,
        function=function,
        arg_names=tuple(p.rstrip("_") for p in params),
        arg_types=tuple(abi_type_of(hints[p]) for p in params),
        return_types=_return_types(hints.get("return")),
        mutability=mutability,
    )


class App:
    """Base class of native apps. Subclasses declare fields, methods, events and errors."""

    _ctx: CallContext
    __methods__: ClassVar[dict[bytes, MethodSpec]] = {}
    __fields__: ClassVar[list[_Field]] = []

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        fields = [v for v in vars(cls).values() if isinstance(v, _Field)]
        for index, field in enumerate(fields):
            field.slot = index.to_bytes(32, "big")
        cls.__fields__ = fields
        methods: dict[bytes, MethodSpec] = {}
        for name, value in vars(cls).items():
            mutability = getattr(value, "__rollup_mutability__", None)
            if mutability:
                spec = _spec_of(name, value, mutability)
                sel = selector(spec.signature)
                if sel in methods:
                    raise TypeError(
                        f"selector clash: {spec.signature} and {methods[sel].signature}"
                    )
                methods[sel] = spec
        cls.__methods__ = methods
        for spec in methods.values():
            if spec.mutability == "callback" and spec.arg_types != CALLBACK_ARGS:
                raise TypeError(
                    f"@callback {spec.name} must take (msg_id: bytes32, ok: bool, "
                    f"data: bytes), not ({', '.join(spec.arg_types)})"
                )

    @property
    def msg(self) -> Msg:
        return self._ctx.msg

    @property
    def block(self) -> BlockEnv:
        return self._ctx.block

    @property
    def address(self) -> Address:
        return self._ctx.address

    def emit(self, event: Event) -> None:
        log = event.to_log(self._ctx.address)
        self._ctx.meter.log(log)
        self._ctx.logs.append(log)

    def send(
        self,
        chain: int,
        to: bytes,
        method: str | bytes,
        *args: Any,
        value: int = 0,
        gas: int = DEFAULT_CALL_GAS,
        callback: Any = None,
        callback_gas: int = DEFAULT_CALLBACK_GAS,
        ttl: int = DEFAULT_TTL,
    ) -> bytes:
        """Call `method(*args)` (a signature, or raw calldata) of the app at `to` on chain
        `chain`, asynchronously: it runs in a later block of that chain with `gas`, if that
        block comes within `ttl` seconds. `value` (this app's native balance) travels with it
        and comes back if the call fails. `callback` (a `@callback` method of this app) gets
        the result. Returns the message id, which the callback receives as `msg_id`."""
        ctx = self._ctx
        data = _calldata(method, args)
        selector_ = _callback_selector(type(self), callback)
        ctx.meter.message(len(data))
        try:
            message = send_call(
                ctx.state,
                ctx.block,
                ctx.address,
                chain,
                to,
                data,
                value,
                gas,
                ttl,
                selector_,
                callback_gas,
            )
        except SendError as exc:
            revert(f"send: {exc}")
        ctx.messages.append(message)
        return message.id

    def withdraw(self, to: bytes, value: int, gas: int = 0, data: bytes = b"") -> None:
        """Send `value` of this app's balance to `to` on the L1: a withdrawal, which anyone
        proves and finalizes on the L1 once a posted output root covers it and the chain's
        withdrawal delay has passed (`rollup bridge finalize`); there `to` is called with
        `data` and `gas` if they are given."""
        ctx = self._ctx
        data = _fixed_bytes(data, len(data) if isinstance(data, bytes) else 0, "data")
        ctx.meter.message(len(data))  # priced like a cross-app send; refused in a view
        try:
            request = start_withdrawal(
                ctx.state,
                ctx.address,
                _address_arg(to),
                _int(value, "value"),
                _int(gas, "gas"),
                data,
            )
        except WithdrawError as exc:
            revert(f"withdraw: {exc}")
        ctx.logs.append(withdrawal_log(request))  # L2ToL1's, as on an EVM chain

    def withdraw_token(self, holder: bytes, to: bytes, amount: int) -> None:
        """For the bridged-token app only: `amount` of this token, already burned from
        `holder`, leaves for `to` on the L1 (the L1 pays it from the chain's escrow)."""
        ctx = self._ctx
        ctx.meter.message(0)
        l1_token = bridged_token_origin(ctx.state, ctx.address)
        if l1_token is None:
            revert("withdraw_token: only a canonical bridged token may withdraw tokens")
        request = WithdrawalRequest(
            _address_arg(holder), _address_arg(to), 0, l1_token, _int(amount, "amount"), 0, b""
        )
        ctx.logs.append(withdrawal_log(request))

    def init(self) -> None:
        """Runs once at genesis with `[app.init]` from rollup.toml as keyword arguments."""


def _callback_selector(cls: type[App], target: Any) -> bytes:
    if target is None:
        return b""
    name = target if isinstance(target, str) else getattr(target, "__name__", None)
    for spec in cls.__methods__.values():
        if spec.name == name and spec.mutability == "callback":
            return selector(spec.signature)
    shown = repr(name)[:80] if isinstance(name, str) else type(target).__name__
    raise TypeError(f"send: callback {shown} is not a @callback method of {cls.__name__}")
