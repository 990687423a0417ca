"""L1 gas of the Portal's user paths stays within budget (gas is deterministic, unlike time).

Measured on Anvil (receipt gasUsed, a chain's first deposit pays for its cold slots), on a
chain that committed an output: depositETH 70.0k (88k first), depositERC20 101.7k (137k
first), proveWithdrawal 99k (1.5 kB of calldata: 32 siblings), finalizeWithdrawal 108k paying
ETH to a new account, reclaimDeposit 100k when it starts exit mode, 63k after. Deposits cost
~29k more (41.4k and 73.0k before) since the hatch rule: a new storage slot per deposit (the
hash of what it escrowed and from whom, which a reclaim checks: 22.1k) and a read of the
inbox's last commitment time (a cold account and slot). OP's foundry benchmarks, execution
gas without the 21,000 base and calldata: depositTransaction 75,085 (36,396 warm),
proveWithdrawalTransaction 169,229 (ethereum-optimism/optimism,
packages/contracts-bedrock/.gas-snapshot)."""

from __future__ import annotations

import pytest

from bridge.portal import DepositRecord
from rollup.crypto import keccak
from rollup.genesis import DEV_ADDRESSES, DEV_KEYS
from rollup.types import ZERO_ADDRESS, Address
from rollup.withdrawals import Withdrawal
from tests.bridge.conftest import DELAY, WINDOW, Bridge, Tree
from tests.bridge.test_portal_reclaim import executed

pytestmark = pytest.mark.e2e

BUDGET = {
    "depositETH": 75_000,
    "depositERC20": 110_000,
    "proveWithdrawal": 110_000,
    "finalizeWithdrawal": 120_000,
    "reclaimDeposit (enters exit mode)": 110_000,
    "reclaimDeposit": 70_000,
}


def _gas(bridge: Bridge, tx_hash: bytes) -> int:
    receipt = bridge.owner.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
    return int(receipt["gasUsed"])


def test_user_paths_stay_within_their_gas_budget(bridge: Bridge) -> None:
    chain = bridge.new_chain()
    alice = bridge.portal_as(DEV_KEYS[2])
    token = bridge.deploy("TestToken", "Test", "TT", 6)
    bridge.send("TestToken", token, "mint", DEV_ADDRESSES[2], 10**9)
    alice.approve_token(token, 10**9)
    withdrawals = [
        Withdrawal(
            chain,
            i,
            DEV_ADDRESSES[2],
            Address(keccak(b"%d" % i)[12:]),
            10**15,
            ZERO_ADDRESS,
            0,
            0,
            b"",
        )
        for i in range(100)
    ]
    tree = Tree(withdrawals)
    commit = bridge.commit(chain, tree.output())  # a live chain: deposits read the inbox
    alice.deposit_eth(chain, DEV_ADDRESSES[3], 10**18)  # the chain's slots, now warm
    alice.deposit_erc20(chain, token, DEV_ADDRESSES[3], 1_000)
    eth = alice.deposit_eth(chain, DEV_ADDRESSES[3], 10**18)
    erc20 = alice.deposit_erc20(chain, token, DEV_ADDRESSES[3], 1_000)
    gas = {"depositETH": _gas(bridge, eth.l1_tx), "depositERC20": _gas(bridge, erc20.l1_tx)}
    w = withdrawals[37]
    proved = bridge.portal.prove_withdrawal(
        w, commit.index, tree.output(), tree.count, tree.siblings(w.nonce)
    )
    gas["proveWithdrawal"] = _gas(bridge, proved)
    bridge.warp(DELAY)
    gas["finalizeWithdrawal"] = _gas(bridge, bridge.portal.finalize_withdrawal(w).l1_tx)
    gas.update(_reclaims(bridge))
    over = {name: used for name, used in gas.items() if used > BUDGET[name]}
    assert not over, f"over budget: {over} (budgets {BUDGET})"


def _reclaims(bridge: Bridge) -> dict[str, int]:
    """Two ETH deposits that the exit root did not execute, paid back to their depositor."""
    chain = bridge.new_chain()
    alice = bridge.portal_as(DEV_KEYS[2])
    state = executed(1)
    alice.deposit_eth(chain, DEV_ADDRESSES[3], 10**18)
    bridge.commit(chain, state.output)
    for _ in range(2):
        alice.deposit_eth(chain, DEV_ADDRESSES[3], 10**18)
    bridge.warp(WINDOW + 1)
    record = DepositRecord(DEV_ADDRESSES[2], 10**18, ZERO_ADDRESS, 0)
    first, second = [
        bridge.portal.reclaim_deposit(chain, nonce, state.output, state.next_nonce(), record)
        for nonce in (1, 2)
    ]
    return {
        "reclaimDeposit (enters exit mode)": _gas(bridge, first),
        "reclaimDeposit": _gas(bridge, second),
    }
