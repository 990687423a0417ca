"""World state as a flat key-value map with a transaction journal.

    account  b"\\x00" ++ address            -> nonce (8 bytes BE) ++ balance (minimal BE)
    storage  b"\\x01" ++ address ++ slot32  -> value (minimal BE for words, raw otherwise)
    code     b"\\x02" ++ address            -> code bytes
A missing key and an empty value are the same: zero. `State` layers a block's writes over a
read-only base (`StateReader`), journals every write so a failed transaction rolls back exactly,
and remembers each key's value before the block (`pre_values`) for history and state diffs.
"""

from __future__ import annotations

from typing import Protocol

from rollup.types import Address

__all__ = [
    "StateReader",
    "DictReader",
    "OverlayReader",
    "State",
    "account_key",
    "storage_key",
    "code_key",
    "get_nonce",
    "get_balance",
    "set_account",
    "get_code",
    "set_code",
    "add_balance",
]

_ACCOUNT, _STORAGE, _CODE = b"\x00", b"\x01", b"\x02"
_MISSING = object()


class StateReader(Protocol):
    def get(self, key: bytes) -> bytes | None: ...


class DictReader:
    """A reader over a plain dict (genesis, tests, eth_call state overrides)."""

    def __init__(self, data: dict[bytes, bytes] | None = None) -> None:
        self.data = data if data is not None else {}

    def get(self, key: bytes) -> bytes | None:
        return self.data.get(key)


class OverlayReader:
    """`base` seen through replaced values, with the storage of `wiped` accounts all zero
    except what `values` sets (eth_call state overrides: geth's `state` and `stateDiff`)."""

    def __init__(
        self, base: StateReader, values: dict[bytes, bytes | None], wiped: set[bytes]
    ) -> None:
        self._base, self._values, self._wiped = base, values, wiped

    def get(self, key: bytes) -> bytes | None:
        if key in self._values:
            return self._values[key]
        if key[:1] == _STORAGE and key[1:21] in self._wiped:
            return None
        return self._base.get(key)


class State:
    def __init__(self, base: StateReader) -> None:
        self._base = base
        self._writes: dict[bytes, bytes | None] = {}
        self._pre: dict[bytes, bytes | None] = {}
        self._journal: list[tuple[bytes, object]] = []

    def get(self, key: bytes) -> bytes | None:
        writes = self._writes
        if key in writes:
            return writes[key]
        return self._base.get(key)

    def set(self, key: bytes, value: bytes | None) -> None:
        if not value:
            value = None
        writes = self._writes
        if key in writes:
            self._journal.append((key, writes[key]))
        else:
            self._journal.append((key, _MISSING))
            if key not in self._pre:
                self._pre[key] = self._base.get(key)
        writes[key] = value

    def snapshot(self) -> int:
        return len(self._journal)

    def revert(self, snapshot: int) -> None:
        journal, writes = self._journal, self._writes
        while len(journal) > snapshot:
            key, old = journal.pop()
            if old is _MISSING:
                del writes[key]
            else:
                writes[key] = old  # type: ignore[assignment]

    def commit(self) -> None:
        """Forget the journal: what was written so far can no longer be reverted."""
        self._journal.clear()

    def changes(self) -> dict[bytes, tuple[bytes | None, bytes | None]]:
        """key -> (value before the block, value now), for keys whose value changed."""
        pre = self._pre
        return {k: (pre[k], v) for k, v in self._writes.items() if pre[k] != v}


def account_key(address: bytes) -> bytes:
    return _ACCOUNT + address


def storage_key(address: bytes, slot: bytes) -> bytes:
    return _STORAGE + address + slot


def code_key(address: bytes) -> bytes:
    return _CODE + address


def _read_account(state: State | StateReader, address: bytes) -> tuple[int, int]:
    raw = state.get(_ACCOUNT + address)
    if not raw:
        return 0, 0
    return int.from_bytes(raw[:8], "big"), int.from_bytes(raw[8:], "big")


def get_nonce(state: State | StateReader, address: bytes) -> int:
    return _read_account(state, address)[0]


def get_balance(state: State | StateReader, address: bytes) -> int:
    return _read_account(state, address)[1]


def get_account(state: State | StateReader, address: bytes) -> tuple[int, int]:
    return _read_account(state, address)


def set_account(state: State, address: bytes, nonce: int, balance: int) -> None:
    if nonce == 0 and balance == 0:
        state.set(_ACCOUNT + address, None)
        return
    state.set(
        _ACCOUNT + address,
        nonce.to_bytes(8, "big") + balance.to_bytes((balance.bit_length() + 7) // 8, "big"),
    )


def add_balance(state: State, address: Address | bytes, amount: int) -> None:
    nonce, balance = _read_account(state, address)
    set_account(state, address, nonce, balance + amount)


def get_code(state: State | StateReader, address: bytes) -> bytes:
    return state.get(_CODE + address) or b""


def set_code(state: State, address: bytes, code: bytes) -> None:
    state.set(_CODE + address, code)
