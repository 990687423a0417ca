"""A bridge on a real EVM for the tests of bridge/: one Anvil per test module with a BatchInbox
and a Portal owned by dev account 0, dev account 1 the batcher of every chain, and the
test-only contracts of tests/bridge/contracts/ (tokens, a re-entrant target, a contract
depositor) compiled once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3

from bridge.deploy import ChainTerms, deploy_bridge, register_chains
from bridge.inbox import BatchInbox, InboxCommitment
from bridge.l1 import L1Client, L1Receipt
from bridge.portal import OutputRootProof, Portal
from bridge.solc import CompiledContract, compile_files
from rollup.crypto import keccak
from rollup.genesis import DEV_KEYS
from rollup.withdrawals import TreeBranch, Withdrawal, append_leaf, branch_root, tree_proof
from services.anvil import AnvilProcess

TEST_CONTRACTS = Path(__file__).parent / "contracts"
DELAY = 100  # seconds: the withdrawal delay of the test chains
WINDOW = 1_000  # seconds: their escape window


class Bridge:
    def __init__(self, anvil: AnvilProcess) -> None:
        self.anvil = anvil
        self.owner = L1Client(anvil.rpc_url, DEV_KEYS[0])
        deployment = deploy_bridge(self.owner)
        self.inbox = BatchInbox(self.owner, deployment.inbox)
        self.portal = Portal(self.owner, deployment.portal)
        self.batcher = BatchInbox(self.client(DEV_KEYS[1]), deployment.inbox)
        self.compiled = compile_files(sorted(TEST_CONTRACTS.glob("*.sol")))
        self._chains = 903_000

    # ---- chains and outputs ----

    def new_chain(self, delay: int = DELAY, window: int = WINDOW) -> int:
        """A chain registered on the Portal, with dev account 1 as its batcher."""
        self._chains += 1
        register_chains(self.portal, [ChainTerms(self._chains, delay, window)])
        self.inbox.set_batcher(self._chains, self.batcher.l1.address)
        return self._chains

    def commit(self, chain_id: int, proof: OutputRootProof) -> InboxCommitment:
        """Commit a one-block batch whose output root is `proof`'s, as the chain's batcher."""
        block = self.inbox.next_block(chain_id)
        return self.batcher.commit(chain_id, block, block, keccak(proof.root), proof.root, b"")

    def warp(self, seconds: int) -> None:
        """Move the L1's clock forward and mine a block at the new time."""
        self.rpc("evm_increaseTime", [seconds])
        self.rpc("evm_mine", [])

    def now(self) -> int:
        return int(self.owner.w3.eth.get_block("latest")["timestamp"])

    # ---- keys and contracts ----

    def client(self, key: str) -> L1Client:
        return L1Client(self.anvil.rpc_url, key)

    def portal_as(self, key: str) -> Portal:
        return Portal(self.client(key), self.portal.address)

    def deploy(self, contract: str, *args: Any, key: str = DEV_KEYS[0]) -> bytes:
        compiled = self.compiled[contract]
        types = [i["type"] for i in _constructor(compiled)]
        receipt = self.client(key).send(None, compiled.bytecode + Web3().codec.encode(types, args))
        assert receipt.contract_address is not None
        return receipt.contract_address

    def contract(self, contract: str, address: bytes) -> Any:
        w3 = self.owner.w3
        return w3.eth.contract(
            address=Web3.to_checksum_address(address), abi=self.compiled[contract].abi
        )

    def send(
        self,
        contract: str,
        address: bytes,
        fn: str,
        *args: Any,
        key: str = DEV_KEYS[0],
        value: int = 0,
    ) -> L1Receipt:
        data = self.contract(contract, address).encode_abi(fn, args=list(args))
        return self.client(key).send(address, bytes.fromhex(data[2:]), value=value)

    def view(self, contract: str, address: bytes, fn: str, *args: Any) -> Any:
        return getattr(self.contract(contract, address).functions, fn)(*args).call()

    def rpc(self, method: str, params: list[Any]) -> Any:
        answer = self.owner.w3.provider.make_request(method, params)  # type: ignore[arg-type]
        assert "error" not in answer, answer
        return answer.get("result")


def _constructor(compiled: CompiledContract) -> list[dict[str, Any]]:
    for item in compiled.abi:
        if item["type"] == "constructor":
            inputs: list[dict[str, Any]] = item["inputs"]
            return inputs
    return []


@pytest.fixture(scope="module")
def bridge() -> Iterator[Bridge]:
    with AnvilProcess() as anvil:
        yield Bridge(anvil)


# ---- withdrawals trees, as the app chain's STF builds them (rollup/withdrawals.py) ----


class Tree:
    """The withdrawals of one chain and the output roots that commit to them."""

    def __init__(self, withdrawals: list[Withdrawal]) -> None:
        self.withdrawals = withdrawals
        branch = TreeBranch.empty()
        for w in withdrawals:
            branch = append_leaf(branch, w.hash)
        self.root = branch_root(branch)  # the block header's withdrawals_root

    def output(
        self, state_root: bytes = b"\x11" * 32, block: bytes = b"\x22" * 32
    ) -> OutputRootProof:
        return OutputRootProof(state_root, self.root, block)

    def siblings(self, nonce: int) -> list[bytes]:
        return tree_proof([w.hash for w in self.withdrawals], nonce)

    @property
    def count(self) -> int:
        return len(self.withdrawals)
