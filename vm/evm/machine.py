"""`EvmVM`: the execution port over the engine, with our `State` as the state of record.

pyrevm cannot ask us for an account or slot it lacks, so the engine holds a mirror of the
whole EVM state and the VM keeps that mirror equal to the `State` it executes against:
- `load(items)` fills it from the store at start-up (every account, code and storage key);
- before a run it refreshes what it knows moved outside the VM: the sender (the STF's nonce
  and fee), the recipient, and `dirty` keys (the last sender's refund, keys a `call` synced
  from another state);
- when the next block's `State` replaces the last one, every key the last block changed is
  refreshed from the new one (the coinbase's fees, plain transfers, an abandoned block);
- after a run, every account and slot its surviving frames read is compared with `State`;
  on a mismatch the mirror is refreshed and the message runs again, so staleness costs time,
  not results. A read made only inside a frame that reverted is not in the journal, so it
  cannot be checked: hence every transaction of an EVM chain goes through the VM (see
  `runs_code`), so nothing but the STF's fee and message bookkeeping changes state behind it.

Gas: revm computes the transaction's gas (intrinsic + execution, refund capped at a fifth of
it, as Ethereum does); the VM reports it minus the intrinsic gas revm charged, access list
included (revm warms the listed addresses and slots, as Ethereum does).
"""

from __future__ import annotations

from collections.abc import Iterable

from rollup.types import AccessList, Address, BlockEnv
from vm.contracts.bridged_token import BRIDGED_TOKEN_RUNTIME
from vm.evm.engine import Engine, Run, engine_intrinsic_gas
from vm.interface import ExecResult, Message
from vm.state import (
    State,
    account_key,
    code_key,
    get_account,
    get_code,
    set_account,
    set_code,
    storage_key,
)

__all__ = ["EvmVM"]

_ACCOUNT, _STORAGE, _CODE = b"\x00", b"\x01", b"\x02"
_MISSING = object()
_MAX_RUNS = 64  # each rerun fixes at least one stale key; more means a bug, not bad luck

View = tuple[int, int, bytes]  # (nonce, balance, code): an account as the engine holds it
_EMPTY: View = (0, 0, b"")


def _slot(key: bytes, value: bytes | None) -> tuple[bytes, int, int]:
    """A storage key and its value as the engine takes them: (address, slot, word)."""
    return key[1:21], int.from_bytes(key[21:], "big"), int.from_bytes(value or b"", "big")


def _account(value: bytes | None) -> tuple[int, int]:
    """(nonce, balance) of an account key's value (see vm/state.py)."""
    if not value:
        return 0, 0
    return int.from_bytes(value[:8], "big"), int.from_bytes(value[8:], "big")


def _word(value: int) -> bytes | None:
    return value.to_bytes((value.bit_length() + 7) // 8, "big") if value else None


class _Expected:
    """What the engine should hold for each account during one run: `State`'s values, read
    once, with the sender's nonce less `offset` (see `EvmVM._run`)."""

    __slots__ = ("state", "sender", "offset", "views")

    def __init__(self, state: State, sender: bytes, offset: int) -> None:
        self.state, self.sender, self.offset = state, sender, offset
        self.views: dict[bytes, View] = {}

    def __call__(self, address: bytes) -> View:
        view = self.views.get(address)
        if view is None:
            nonce, balance = get_account(self.state, address)
            if address == self.sender:
                nonce -= self.offset
            view = self.views[address] = (nonce, balance, get_code(self.state, address))
        return view

    def in_state(self, address: bytes) -> tuple[int, int]:
        """(nonce, balance) as `State` holds them."""
        nonce, balance, _ = self(address)
        return (nonce + self.offset if address == self.sender else nonce), balance


class EvmVM:
    """Executes messages for a chain whose contracts are EVM bytecode (Cancun rules, revm 8).

    Give it the whole state it starts from (`items`: the store's keys and values), and use
    one instance per chain, on one thread. `call` and `code_at` never change `State`.
    """

    def __init__(
        self, chain_id: int, gas_limit: int, items: Iterable[tuple[bytes, bytes | None]] = ()
    ) -> None:
        self.chain_id = chain_id
        self.gas_limit = gas_limit
        self.reset(items)

    def reset(self, items: Iterable[tuple[bytes, bytes | None]]) -> None:
        """Drop the engine and rebuild it from `items` (start-up, reorg, or to shed memory)."""
        self._engine = Engine(self.chain_id, self.gas_limit)
        self._views: dict[bytes, View] = {}
        self._dirty: set[bytes] = set()
        self._pushed: dict[bytes, bytes | None] = {}  # storage written in the current block
        self._state: State | None = None
        self._env: BlockEnv | None = None
        self._last_trace = ""
        self._coinbases: set[bytes] = set()  # revm keeps each in its journal: always "touched"
        self.load(items)

    def load(self, items: Iterable[tuple[bytes, bytes | None]]) -> None:
        """Copy accounts, code and storage into the engine; other keys are not the EVM's."""
        accounts: dict[bytes, View] = {}
        slots: list[tuple[bytes, int, int]] = []
        for key, value in items:
            kind, address = key[:1], key[1:21]
            if kind in (_ACCOUNT, _CODE) and len(key) == 21:
                nonce, balance, code = accounts.get(address) or self._views.get(address, _EMPTY)
                if kind == _CODE:
                    code = value or b""
                elif value:
                    nonce, balance = (
                        int.from_bytes(value[:8], "big"),
                        int.from_bytes(value[8:], "big"),
                    )
                else:
                    nonce, balance = 0, 0
                accounts[address] = (nonce, balance, code)
            elif kind == _STORAGE and len(key) == 53:
                slots.append(_slot(key, value))
        for address, view in accounts.items():
            self._push_account(address, view)
        self._engine.put_storage(slots)

    # ---- the port ----

    def begin_block(self, state: State, env: BlockEnv) -> None:
        self._enter(state)
        self._set_env(env)

    def execute(self, state: State, env: BlockEnv, msg: Message) -> ExecResult:
        self._enter(state)
        self._set_env(env)
        result = self._run(state, msg, commit=True)
        self._dirty.add(account_key(msg.sender))  # the STF refunds unused gas next
        return result

    def call(self, state: State, env: BlockEnv, msg: Message) -> ExecResult:
        """eth_call: run against `state` (any block's) and change nothing."""
        self._set_env(env)
        return self._run(state, msg, commit=False)

    def code_at(self, state: State, address: Address) -> bytes:
        return get_code(state, address)

    def install_bridged_token(
        self, state: State, address: Address, storage: dict[bytes, bytes | None]
    ) -> None:
        """The BridgedToken contract's runtime at `address` (vm/contracts/BridgedToken.sol)
        with its first storage; the mirror takes them before the next run (a token's first
        run may read them inside a frame that reverts, where a stale read goes unseen)."""
        set_code(state, address, BRIDGED_TOKEN_RUNTIME)
        self._dirty.add(code_key(address))
        for key, value in storage.items():
            state.set(key, value)
            self._dirty.add(key)

    def runs_code(self, state: State, address: Address) -> bool:
        return True  # precompiles have no code; and plain transfers must reach the mirror

    def trace(self, state: State, env: BlockEnv, msg: Message) -> tuple[ExecResult, str]:
        """Execute like `execute` and also return revm's EIP-3155 steps of the run."""
        self._enter(state)
        self._set_env(env)
        result = self._run(state, msg, commit=True, trace=True)
        self._dirty.add(account_key(msg.sender))
        return result, self._last_trace

    # ---- keeping the mirror equal to State ----

    def _enter(self, state: State) -> None:
        """Switch to a block's state: what the last one changed may differ in the new one."""
        if state is self._state:
            return
        if self._state is not None:
            for key in self._state.changes():
                if key[:1] != _STORAGE or self._pushed.get(key, _MISSING) != state.get(key):
                    self._dirty.add(key)
        self._pushed.clear()
        self._state = state

    def _set_env(self, env: BlockEnv) -> None:
        if env == self._env:
            return
        if env.chain_id != self.chain_id or env.gas_limit != self.gas_limit:
            raise ValueError(
                f"EvmVM was built for chain {self.chain_id} with gas limit {self.gas_limit}, "
                f"not chain {env.chain_id} with {env.gas_limit}: build a new one"
            )
        self._engine.set_block(env)
        self._coinbases.add(env.coinbase)
        self._env = env

    def _push_account(self, address: bytes, view: View) -> None:
        self._engine.put_account(address, *view)
        if view == _EMPTY:
            self._views.pop(address, None)
        else:
            self._views[address] = view

    def _refresh(self, state: State, keys: Iterable[bytes], expected: _Expected) -> None:
        """Make the engine hold `state`'s value of every key."""
        slots: list[tuple[bytes, int, int]] = []
        for key in keys:
            kind, address = key[:1], key[1:21]
            if kind == _STORAGE:
                value = state.get(key)
                slots.append(_slot(key, value))
                self._pushed[key] = value
            elif kind in (_ACCOUNT, _CODE):
                truth = expected(address)
                if self._views.get(address, _EMPTY) != truth:
                    self._push_account(address, truth)
        if slots:
            self._engine.put_storage(slots)

    def _stale(self, state: State, run: Run, expected: _Expected) -> list[bytes]:
        """Keys the run read whose engine value differs from `state`'s."""
        stale: list[bytes] = []
        views = self._views
        for address, touched in run.touched.items():
            if views.get(address, _EMPTY) != expected(address):
                stale.append(account_key(address))
            if touched.created:
                continue  # revm reads a new account's storage as empty, whatever the database says
            for slot, (before, _after) in touched.storage.items():
                key = storage_key(address, slot.to_bytes(32, "big"))
                if before != int.from_bytes(state.get(key) or b"", "big"):
                    stale.append(key)
        return stale

    # ---- running ----

    def _run(self, state: State, msg: Message, commit: bool, trace: bool = False) -> ExecResult:
        # The STF bumped the sender's nonce before `execute`; a CREATE derives its address
        # from the nonce before that bump, and revm bumps it itself.
        expected = _Expected(state, msg.sender, 1 if commit and msg.to is None else 0)
        keys = set(self._dirty)
        keys.add(account_key(msg.sender))
        if msg.to is not None:
            keys.add(account_key(msg.to))
        self._refresh(state, keys, expected)
        if commit:
            self._dirty.clear()
        else:
            self._dirty |= keys  # they hold `state`'s values, which may not be the block's
        intrinsic = engine_intrinsic_gas(msg.data, msg.to is None, msg.access_list)
        gas = msg.gas + intrinsic
        for _ in range(_MAX_RUNS):
            run = self._engine.run(
                msg.sender,
                msg.to,
                msg.value,
                msg.data,
                gas,
                self._price(msg, gas),
                msg.access_list,
                trace,
            )
            stale = self._stale(state, run, expected)
            if not stale:
                break
            self._refresh(state, stale, expected)
            if not commit:
                self._dirty.update(stale)
        else:
            raise RuntimeError("the EVM mirror did not converge on the state of record")
        self._last_trace = run.trace  # the run that saw no stale reads
        if commit and run.success:
            self._write_back(state, run, expected)
        return ExecResult(
            success=run.success,
            gas_used=max(run.gas_used - intrinsic, 0),
            output=run.output,
            logs=run.logs,
            contract_address=run.created,
            # only eth_createAccessList reads it, through `call`: a block skips the cost
            accessed=() if commit else _accessed(run, self._coinbases),
        )

    def _price(self, msg: Message, gas: int) -> int:
        """revm checks `balance >= gas * price + value`, but the STF has already taken the fee:
        pass the price when the rest of the balance covers that check again (GASPRICE is then
        right), else 0, which only GASPRICE can tell."""
        balance = self._views.get(msg.sender, _EMPTY)[1]
        return msg.gas_price if balance >= gas * msg.gas_price + msg.value else 0

    def _write_back(self, state: State, run: Run, expected: _Expected) -> None:
        """Put what the run changed into `State` and into the engine's database."""
        slots: list[tuple[bytes, int, int]] = []
        for address, touched in run.touched.items():
            view = self._views.get(address, _EMPTY)  # == expected(address): nothing was stale
            if touched.destroyed:
                after: View = _EMPTY
            else:
                code = touched.code if touched.created else view[2]
                after = (touched.nonce, touched.balance, code)
            if (after[0], after[1]) != expected.in_state(address):
                set_account(state, address, after[0], after[1])
            if after[2] != view[2]:
                set_code(state, address, after[2])
            if after != view:
                self._push_account(address, after)
            if touched.destroyed:
                continue
            for slot, (before, value) in touched.storage.items():
                if value != before:
                    key = storage_key(address, slot.to_bytes(32, "big"))
                    word = _word(value)
                    state.set(key, word)
                    self._pushed[key] = word
                    slots.append((address, slot, value))
        if slots:
            self._engine.put_storage(slots)


def _accessed(run: Run, coinbases: set[bytes]) -> AccessList:
    """Accounts and slots the run's surviving frames touched, in first-touched order; a
    coinbase counts only for its storage (revm holds every coinbase it was given)."""
    return tuple(
        (address, tuple(slot.to_bytes(32, "big") for slot in touched.storage))
        for address, touched in run.touched.items()
        if touched.storage or address not in coinbases
    )
