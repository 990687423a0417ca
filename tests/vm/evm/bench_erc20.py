"""Measure signed ERC-20 transfers through `vm.stf.apply_transaction` on EvmVM, and memory.

    ETH_HASH_BACKEND=pysha3 .venv/bin/python tests/vm/evm/bench_erc20.py [transfers]

Not a test (no timings in tests): prints CPU-time rates for decoding (signature recovery)
and for applying, and the process's RSS before and after. A new block (State) every 1,000.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from eth_account import Account

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from conftest import CHAIN_ID, GAS_LIMIT, compile_fixtures  # noqa: E402

from rollup.transactions import decode_transaction  # noqa: E402
from rollup.types import Address, BlockEnv  # noqa: E402
from vm.evm import EvmVM  # noqa: E402
from vm.state import DictReader, State, account_key  # noqa: E402
from vm.stf import apply_transaction  # noqa: E402


def rss_kb() -> int:
    return int(Path("/proc/self/status").read_text().split("VmRSS:")[1].split()[0])


def main(count: int) -> None:
    token = compile_fixtures()["Token"]
    holders = [Account.create(str(i)) for i in range(200)]
    data = {
        account_key(bytes.fromhex(h.address[2:])): bytes(8) + (10**21).to_bytes(9, "big")
        for h in holders
    }
    vm = EvmVM(CHAIN_ID, GAS_LIMIT, data.items())
    env = BlockEnv(1, 1, Address(b"\xfe" * 20), 7, GAS_LIMIT, CHAIN_ID)
    nonces = [0] * len(holders)

    def sign(i: int, to: bytes, payload: bytes, gas: int = 100_000) -> bytes:
        fields = {
            "type": 2,
            "chainId": CHAIN_ID,
            "nonce": nonces[i],
            "maxFeePerGas": 14,
            "maxPriorityFeePerGas": 1,
            "gas": gas,
            "to": to,
            "value": 0,
            "data": payload,
        }
        nonces[i] += 1
        return bytes(Account.sign_transaction(fields, holders[i].key).raw_transaction)

    state = State(DictReader(data))
    deploy = sign(0, b"", token.deploy_data(("uint256", 10**30)), 3_000_000)
    address = apply_transaction(state, env, vm, decode_transaction(deploy, CHAIN_ID), 0)
    assert address.contract_address is not None
    to = address.contract_address
    for i in range(1, len(holders)):
        raw = sign(0, to, token.calldata("transfer", holders[i].address, 10**20))
        assert apply_transaction(state, env, vm, decode_transaction(raw, CHAIN_ID), 0).status
    raws = []
    for n in range(count):
        i = n % len(holders)
        recipient = holders[(i * 7 + 3) % len(holders)].address
        raws.append(sign(i, to, token.calldata("transfer", recipient, 1 + n % 5)))

    started = time.process_time()
    txs = [decode_transaction(raw, CHAIN_ID) for raw in raws]
    decoding = time.process_time() - started
    before = rss_kb()
    started = time.process_time()
    for n, tx in enumerate(txs):
        if n % 1_000 == 0:
            for key, (_old, new) in state.changes().items():
                if new is None:
                    data.pop(key, None)
                else:
                    data[key] = new
            state = State(DictReader(data))
        assert apply_transaction(state, env, vm, tx, 0).status == 1
    applying = time.process_time() - started
    both = count / (decoding + applying)
    print(
        f"{count} signed ERC-20 transfers: decode {count / decoding:,.0f}/s, "
        f"apply_transaction {count / applying:,.0f}/s ({applying / count * 1e6:.1f} us), "
        f"both {both:,.0f}/s; RSS {before} -> {rss_kb()} KB"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
