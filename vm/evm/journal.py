"""Read what a run touched out of revm's journaled state, the only place pyrevm exposes it.

pyrevm 0.3.7 has no state-diff API: `journal_state` gives account info only (no storage, and
padded code), so we parse `EVM.journal_str`, revm 8's `Debug` rendering of `JournaledState`:

    JournaledState { state: {ADDR: Account { info: AccountInfo { balance: D, nonce: D,
        code_hash: 0xH, code: (None | Some(Bytecode { bytecode: 0xHEX, state: KIND })) },
        storage: {SLOT: StorageSlot { previous_or_original_value: D, present_value: D }, ...},
        status: AccountStatus(FLAG | FLAG ...) }, ...}, transient_storage: ..., logs: ...,
        depth: D, journal: ..., spec: ..., warm_preloaded_addresses: ... }

KIND is `Raw`, `Checked { len: D, .. }` or `Analysed { len: D, .. }`; an analysed bytecode is
padded with zeros, so its true length is `len`. Addresses are lower-case hex, numbers decimal.
Only the part before `transient_storage` is read. Accounts loaded in frames that reverted are
not in the journal any more: revert undoes their loads too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rollup.types import Address

__all__ = ["Touched", "parse_touched"]

_ACCOUNT = re.compile(
    r"0x([0-9a-f]{40}): Account \{ info: AccountInfo \{ balance: (\d+), nonce: (\d+), "
    r"code_hash: 0x[0-9a-f]{64}, code: (.*?) \}, storage: \{(.*?)\}, "
    r"status: AccountStatus\(([^)]*)\) \}"
)
_SLOT = re.compile(
    r"(\d+): StorageSlot \{ previous_or_original_value: (\d+), present_value: (\d+) \}"
)
_CODE = re.compile(r"bytecode: 0x([0-9a-f]*), state: (\w+)(?: \{ len: (\d+))?")


@dataclass(frozen=True, slots=True)
class Touched:
    """One account as a run left it: its info now, and every slot it read or wrote."""

    nonce: int
    balance: int
    created: bool  # created in this run (its code is in `code`, its storage started empty)
    destroyed: bool  # self-destructed in the run that created it (EIP-6780)
    code: bytes  # runtime code when `created`, else empty (code only changes at creation)
    storage: dict[int, tuple[int, int]]  # slot -> (value before the run, value after)


def parse_touched(journal: str) -> dict[Address, Touched]:
    end = journal.find(", transient_storage: ")
    text = journal[:end] if end >= 0 else journal
    touched: dict[Address, Touched] = {}
    for match in _ACCOUNT.finditer(text):
        address, balance, nonce, code, storage, status = match.groups()
        created = "Created" in status
        touched[Address(bytes.fromhex(address))] = Touched(
            nonce=int(nonce),
            balance=int(balance),
            created=created,
            destroyed="SelfDestructed" in status,
            code=_runtime_code(code) if created else b"",
            storage=_slots(storage) if storage else {},
        )
    return touched


def _slots(text: str) -> dict[int, tuple[int, int]]:
    return {int(s): (int(before), int(after)) for s, before, after in _SLOT.findall(text)}


def _runtime_code(text: str) -> bytes:
    match = _CODE.search(text)
    if match is None:
        return b""
    code = bytes.fromhex(match.group(1))
    length = match.group(3)
    return code[: int(length)] if length is not None else code
