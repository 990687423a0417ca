"""A raw-bytecode contract that reads the block environment, shared by the adapter's tests and
tests/e2e/test_evm_block_env.py (no solc needed).

Called with any calldata, it reads each of `FIELDS` in order, stores reading i in slot i and
returns them all as 32-byte words; so a transaction leaves in storage what it saw, and an
eth_call returns what it sees.
"""

from __future__ import annotations

__all__ = ["FIELDS", "INIT", "RUNTIME", "decode"]

# Each field's reading, as opcodes that leave one word on the stack.
_READS: dict[str, str] = {
    "basefee": "48",  # BASEFEE
    "parent_hash": "436001900340",  # BLOCKHASH(NUMBER - 1): NUMBER PUSH1 1 SWAP1 SUB BLOCKHASH
    "this_hash": "4340",  # BLOCKHASH(NUMBER): 0 on Ethereum
    "number": "43",  # NUMBER
    "timestamp": "42",  # TIMESTAMP
    "coinbase": "41",  # COINBASE
    "chain_id": "46",  # CHAINID
    "gas_limit": "45",  # GASLIMIT
    "prev_randao": "44",  # PREVRANDAO
}
FIELDS: tuple[str, ...] = tuple(_READS)


def _runtime() -> bytes:
    """read; DUP1; SSTORE(i, it); MSTORE(32 i, it) for each field; RETURN(0, 32 n)."""
    code = ""
    for i, read in enumerate(_READS.values()):
        code += read + "80" + f"60{i:02x}55" + f"61{32 * i:04x}52"
    return bytes.fromhex(code + f"61{32 * len(_READS):04x}5ff3")


RUNTIME = _runtime()
assert len(RUNTIME) < 256  # one PUSH1 below gives its length
# PUSH1 len DUP1 PUSH1 9 PUSH0 CODECOPY PUSH0 RETURN: returns what follows these 9 bytes
INIT = bytes.fromhex(f"60{len(RUNTIME):02x}8060095f395ff3") + RUNTIME


def decode(words: bytes) -> dict[str, int]:
    """The contract's return data (or its storage, slot by slot, joined) by field name."""
    if len(words) != 32 * len(FIELDS):
        raise ValueError(f"expected {len(FIELDS)} words, got {len(words)} bytes")
    return {
        name: int.from_bytes(words[32 * i : 32 * i + 32], "big") for i, name in enumerate(FIELDS)
    }
