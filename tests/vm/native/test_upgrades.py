"""Replacing an app's code at a block height, through a transaction the sequencer orders."""

from __future__ import annotations

from pathlib import Path

from rollup.types import Receipt
from sequencer.harness import LocalChain
from vm.interface import Message
from vm.native.abi import decode_args, encode_values, selector
from vm.native.upgrades import UPGRADE_ADDRESS, UPGRADE_SELECTOR
from vm.stf import env_of

V2_EXTRA = """

    @view
    def version(self) -> uint256:
        return 2
"""


def v2_source(app_dir: Path) -> str:
    source = (app_dir / "app.py").read_text()
    assert "    uint256,\n" in source  # the token template imports it; the method needs it
    return source + V2_EXTRA


def schedule(chain: LocalChain, sender_index: int, source: str, height: int) -> Receipt:
    data = UPGRADE_SELECTOR + encode_values(
        ["address", "bytes", "uint64"], [chain.app.address, source.encode(), height]
    )
    raw = chain.sign(chain.accounts[sender_index], UPGRADE_ADDRESS, data, gas=2_000_000)
    return chain.send_raw(raw)


def version(chain: LocalChain) -> int | None:
    node = chain.node
    msg = Message(
        chain.accounts[0], chain.app.address, 0, selector("version()"), 10**6, chain.accounts[0], 0
    )
    result = node.vm.call(node.state_at(node.committed.number), env_of(node.committed), msg)
    return decode_args(["uint256"], result.output)[0] if result.success else None


def reason(receipt: Receipt) -> str:
    return receipt.return_data[68:].rstrip(b"\x00").decode()


def test_upgrade_activates_at_its_height_and_keeps_state(token_app: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'chain.db'}"
    with LocalChain.from_dir(token_app, url) as chain:
        alice, bob = chain.accounts[0], chain.accounts[1]
        chain.transact(alice, "transfer", bob, 123)
        height = chain.node.committed.number + 3
        receipt = schedule(chain, 0, v2_source(token_app), height)
        assert receipt.status == 1
        code_before = chain.node.state.get(b"\x02" + chain.app.address)
        while chain.node.committed.number < height - 1:
            assert version(chain) is None
            chain.transact(alice, "transfer", bob, 1)
        chain.transact(alice, "transfer", bob, 1)  # block `height`: the new code runs
        assert chain.node.committed.number == height
        assert version(chain) == 2
        assert chain.call("balanceOf", bob) == 123 + 2
        assert chain.node.state.get(b"\x02" + chain.app.address) != code_before
    with LocalChain.from_dir(token_app, url) as chain:  # the old code on disk, the new in state
        assert version(chain) == 2
        assert chain.call("balanceOf", chain.accounts[1]) == 125


def test_only_the_owner_may_upgrade(token_app: Path) -> None:
    with LocalChain.from_dir(token_app) as chain:
        receipt = schedule(chain, 1, v2_source(token_app), chain.node.committed.number + 2)
        assert receipt.status == 0 and "owner" in reason(receipt)


def test_rejected_code_and_past_heights_fail_the_request(token_app: Path) -> None:
    with LocalChain.from_dir(token_app) as chain:
        bad = v2_source(token_app) + "\nimport os\n"
        receipt = schedule(chain, 0, bad, chain.node.committed.number + 5)
        assert receipt.status == 0 and "[import]" in reason(receipt)
        receipt = schedule(chain, 0, v2_source(token_app), 1)
        assert receipt.status == 0 and "activation height" in reason(receipt)
        for _ in range(6):
            chain.transact(chain.accounts[0], "transfer", chain.accounts[1], 1)
        assert version(chain) is None
