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
Only the `state` map is read. Accounts loaded in frames that reverted are
not in the journal any more: revert undoes their loads too.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from rollup.types import Address

__all__ = ["Touched", "parse_touched"]

_PREFIX = "JournaledState { state: {"
_HEAD = re.compile(
    r"0x([0-9a-f]{40}): Account \{ info: AccountInfo \{ balance: (\d+), nonce: (\d+), "
    r"code_hash: 0x[0-9a-f]{64}, code: "
)
_STORAGE = " }, storage: {"
_STATUS = "}, status: AccountStatus("
_SLOT = re.compile(
    r"(\d+): StorageSlot \{ previous_or_original_value: (\d+), present_value: (\d+) \}"
)
_CODE = re.compile(r"bytecode: 0x([0-9a-f]*), state: (\w+)(?: \{ len: (\d+))?")


class Touched(NamedTuple):
    """One account as a run left it: its info now, and every slot it read or wrote.

    A NamedTuple rather than a frozen dataclass: a run makes several, and this is the hot path.
    """

    nonce: int
    balance: int
    created: bool  # created in this run (its code is in `code`, its storage started empty)
    destroyed: bool  # self-destructed in the run that created it (EIP-6780)
    code: bytes  # runtime code when `created`, else empty (code only changes at creation)
    storage: dict[int, tuple[int, int]]  # slot -> (value before the run, value after)


def parse_touched(journal: str) -> dict[Address, Touched]:
    """Every account in the journaled state; raises ValueError on text it does not expect,
    since reading nothing would silently drop a run's writes."""
    if not journal.startswith(_PREFIX):
        raise ValueError(f"not a revm 8 journal: {journal[:60]!r}")
    touched: dict[Address, Touched] = {}
    at = len(_PREFIX)
    if journal.startswith("}", at):
        return touched
    while True:
        head = _HEAD.match(journal, at)
        if head is None:
            raise ValueError(f"unexpected journal text: {journal[at : at + 120]!r}")
        address, balance, nonce = head.groups()
        # Touched contracts' code is most of the text: each is skipped once, by str.index.
        storage_at = journal.index(_STORAGE, head.end())
        status_at = journal.index(_STATUS, storage_at)
        status_end = journal.index(") }", status_at)
        status = journal[status_at + len(_STATUS) : status_end]
        storage = journal[storage_at + len(_STORAGE) : status_at]
        created = "Created" in status
        code = _runtime_code(journal[head.end() : storage_at]) if created else b""
        touched[Address(bytes.fromhex(address))] = Touched(
            int(nonce),
            int(balance),
            created,
            "SelfDestructed" in status,
            code,
            _slots(storage) if storage else {},
        )
        at = status_end + 3  # `, ` and the next account, or `}` closing the map
        if not journal.startswith(", ", at):
            return touched
        at += 2


def _slots(text: str) -> dict[int, tuple[int, int]]:
    return {int(s): (int(before), int(after)) for s, before, after in _SLOT.findall(text)}


def _runtime_code(text: str) -> bytes:
    match = _CODE.search(text)
    if match is None:
        return b""
    code = bytes.fromhex(match.group(1))
    length = match.group(3)
    return code[: int(length)] if length is not None else code
