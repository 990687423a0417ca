"""One pyrevm instance: a mirror of the chain's EVM state that runs one message at a time.

pyrevm 0.3.7 (revm 8) never finalizes a call: what a call loads stays in its journaled state,
warm and with its "original" storage values, so a reused instance charges later transactions
EIP-2929/2200 gas as if they were one transaction, and grows by ~0.7 KB a call. So every run is
bracketed, and the engine's database (revm's `CacheDB`) is the only state between runs:

    snapshot -> message_call | deploy -> read the journal -> revert -> caller writes the diff
    back with `put_account` / `put_storage`

The revert leaves the journaled state empty, except the coinbase, which revm loads without
journaling (EIP-3651 keeps it warm anyway; a chain whose coinbase changes needs a new engine).
pyrevm cannot ask anyone for a missing account or slot: whatever is not in the database reads
as empty, so the caller must load the whole EVM state, then keep it in step.

Other pyrevm facts this module works around:
- `spec_id` takes revm's spelling ("Cancun"); any other string silently means LATEST.
- the block gas limit (GASLIMIT, and the cap on a call's gas) is the constructor's `gas_limit`;
  `set_block_env` ignores its own.
- BASEFEE reads 0 (`ENGINE_BASE_FEE`): every `message_call` and `deploy` builds its env with
  `basefee: 0` (`build_test_env` in pyrevm's src/evm.rs) and keeps it, whatever
  `set_block_env` was given. So revm's `gas_price >= basefee` check never fires either: fees
  are the STF's (vm/stf.py `_check`), and a simulation below the base fee runs, as it always has.
- `message_call` neither charges fees nor bumps nonces, but checks `balance >= gas *
  gas_price + value` (`LackOfFundForMaxFee`); `deploy` does charge the fee and pays it to the
  coinbase, outside the journal, so a revert leaves the coinbase richer: deploys run at price 0.
- a failed run raises RuntimeError: `Revert { gas_used: N, output: 0x.. }`,
  `Halt { reason: .., gas_used: N }`, or a validation error such as `Transaction(..)`.
- `commit()` without an open snapshot underflows the journal depth (every later call fails
  with CallTooDeep), so it is never called; `basic`, `storage`, `get_code` and
  `insert_account_storage` load the account into the journaled state, so they only run inside
  a snapshot; `get_code` of deployed code returns it zero-padded.
- BLOCKHASH(n) of the 256 blocks before NUMBER asks revm's `CacheDB` over an `EmptyDB`, which
  answers keccak(decimal n) (`engine_block_hash`): pyrevm has no way to put a hash in that
  cache, its only other database is `fork_url`'s JSON-RPC over HTTP, and revm 8 reads no
  EIP-2935 history contract, under any spec. Outside the window it reads 0, as on Ethereum.
- `insert_account_info` and `insert_account_storage` write to the database only when the
  account is not in the journaled state; otherwise they change the journaled copy, which the
  next revert throws away (or, for the coinbase, keeps for good).
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections.abc import Iterable
from dataclasses import dataclass
from io import StringIO

import pyrevm

from rollup.crypto import keccak
from rollup.transactions import message_intrinsic_gas
from rollup.types import ZERO_HASH, AccessList, Address, BlockEnv, Hash32, Log
from vm.evm.journal import Touched, parse_touched

__all__ = [
    "BLOCK_HASH_WINDOW",
    "ENGINE_BASE_FEE",
    "SPEC",
    "Engine",
    "Run",
    "engine_block_hash",
    "engine_intrinsic_gas",
]

SPEC = "Cancun"
ENGINE_BASE_FEE = 0  # what BASEFEE reads, whatever the block's base fee (see above)
BLOCK_HASH_WINDOW = 256  # BLOCKHASH answers for this many blocks before the current one

_FAILURE = re.compile(r"^(Revert|Halt) \{.*?gas_used: (\d+)(?:, output: 0x([0-9a-f]*))?")


@dataclass(frozen=True, slots=True)
class Run:
    success: bool
    gas_used: int  # the whole transaction's as revm counts it: intrinsic + execution - refund
    output: bytes  # return data, revert data, or the runtime code of a created contract
    logs: tuple[Log, ...]
    created: Address | None
    touched: dict[Address, Touched]  # what the surviving frames loaded, as they left it
    trace: str = ""  # revm's EIP-3155 step lines, when the run was traced


def engine_intrinsic_gas(data: bytes, create: bool, access_list: AccessList = ()) -> int:
    """The intrinsic gas revm charges before running a message: Ethereum's."""
    return message_intrinsic_gas(data, create, access_list)


def engine_block_hash(current: int, number: int) -> Hash32:
    """What BLOCKHASH(number) reads in block `current`: not the chain's hash, which the engine
    cannot be given, but revm's stand-in, keccak of the number's decimal digits; zero outside
    the window, as on Ethereum. It depends on the numbers alone, so every node agrees."""
    if not current - BLOCK_HASH_WINDOW <= number < current:
        return ZERO_HASH
    return Hash32(keccak(str(number).encode()))


def _hex(address: bytes) -> str:
    return "0x" + address.hex()


class Engine:
    def __init__(self, chain_id: int, gas_limit: int) -> None:
        env = pyrevm.Env(cfg=pyrevm.CfgEnv(chain_id=chain_id))
        self._evm = pyrevm.EVM(env=env, gas_limit=gas_limit, spec_id=SPEC)
        self._access_list: AccessList = ()

    def set_block(self, env: BlockEnv) -> None:
        self._evm.set_block_env(
            pyrevm.BlockEnv(
                number=env.number,
                coinbase=_hex(env.coinbase),
                timestamp=env.timestamp,
                prevrandao=bytes(env.prev_randao),
                basefee=env.base_fee,  # each run replaces it with 0: ENGINE_BASE_FEE
                gas_limit=env.gas_limit,
            )
        )

    def put_account(self, address: bytes, nonce: int, balance: int, code: bytes) -> None:
        """Write an account into the database; only valid between runs."""
        # the stub lacks `balance`, which the constructor takes
        info = pyrevm.AccountInfo(balance=balance, nonce=nonce, code=code or None)  # type: ignore[call-arg]
        self._evm.insert_account_info(_hex(address), info)

    def put_storage(self, slots: Iterable[tuple[bytes, int, int]]) -> None:
        """Write (address, slot, value) into the database; only valid between runs.

        `insert_account_storage` writes to the database only while the account is not in the
        journaled state, and loads it there: so each write gets its own snapshot and revert.
        """
        evm = self._evm
        for address, slot, value in slots:
            checkpoint = evm.snapshot()
            try:
                evm.insert_account_storage(_hex(address), slot, value)
            finally:
                evm.revert(checkpoint)

    def run(
        self,
        caller: bytes,
        to: bytes | None,
        value: int,
        data: bytes,
        gas: int,
        gas_price: int,
        access_list: AccessList = (),
        trace: bool = False,
    ) -> Run:
        """Run one message on a cold journal and leave the engine as it was.

        `trace`: record revm's EIP-3155 steps, which its tracer prints to Python's sys.stdout.
        """
        if trace:
            out = StringIO()
            self._evm.tracing = True  # type: ignore[misc]  # the stub misses the setter
            try:
                with contextlib.redirect_stdout(out):
                    run = self.run(caller, to, value, data, gas, gas_price, access_list)
            finally:
                self._evm.tracing = False  # type: ignore[misc]
            return dataclasses.replace(run, trace=out.getvalue())
        evm = self._evm
        if access_list != self._access_list:
            # message_call and deploy keep the rest of the tx env, the access list included
            listed = [(_hex(a), [int.from_bytes(k, "big") for k in ks]) for a, ks in access_list]
            evm.set_tx_env(pyrevm.TxEnv(access_list=listed))
            self._access_list = access_list
        checkpoint = evm.snapshot()
        try:
            self._warm(access_list)
            return self._run(caller, to, value, data, gas, gas_price)
        finally:
            evm.revert(checkpoint)

    def _warm(self, access_list: AccessList) -> None:
        """Load the listed accounts and slots through the journal before the run.

        revm loads a transaction's access list with `initial_account_load`, which writes no
        journal entries, so the revert after the run would leave those accounts and slots in
        the journaled state for good: warm in every later run, and with the values they had
        then (later `put_storage` writes go to that copy and are reverted with it). Loaded
        here first, inside the snapshot, they are journaled, and revm finds them already there.
        """
        evm = self._evm
        for address, keys in access_list:
            target = _hex(address)
            evm.basic(target)
            for key in keys:
                evm.storage(target, int.from_bytes(key, "big"))

    def _run(
        self, caller: bytes, to: bytes | None, value: int, data: bytes, gas: int, gas_price: int
    ) -> Run:
        evm = self._evm
        created: Address | None = None
        try:
            if to is None:
                # deploy charges gas * gas_price to the caller and pays it to the coinbase,
                # whose account revert does not restore: run it at price 0 (GASPRICE reads 0)
                address = evm.deploy(_hex(caller), data, value=value, gas=gas)
                created = Address(bytes.fromhex(address[2:]))
                output = b""
            else:
                output = evm.message_call(
                    _hex(caller), _hex(to), data, value=value, gas=gas, gas_price=gas_price
                )
        except RuntimeError as exc:
            return _failure(str(exc), gas, parse_touched(evm.journal_str))
        result = evm.result
        assert result is not None
        touched = parse_touched(evm.journal_str)
        if created is not None:
            output = touched[created].code
        logs = tuple(_log(log) for log in result.logs)
        return Run(True, result.gas_used, output, logs, created, touched)


def _failure(message: str, gas: int, touched: dict[Address, Touched]) -> Run:
    match = _FAILURE.match(message)
    if match is None:  # rejected before running (e.g. LackOfFundForMaxFee): all gas is gone
        return Run(False, gas, b"", (), None, touched)
    kind, gas_used, output = match.groups()
    data = bytes.fromhex(output) if kind == "Revert" and output else b""
    return Run(False, int(gas_used), data, (), None, touched)


def _log(log: pyrevm.Log) -> Log:
    topics, data = log.data
    return Log(
        Address(bytes.fromhex(log.address[2:])),
        tuple(Hash32(bytes(topic)) for topic in topics),
        bytes(data),
    )
