"""Finding 1 of the security review, performed against a running node: one unsigned request
(eth_call claiming the owner's address, to the native upgrade address) used to load and run
the source it carried, and the node answered CORS preflights from any origin.

Now: simulations never load code or touch the upgrade schedule, whatever they claim and
whoever sends them (a web page's "simple" cross-origin POST included), and the app's code is
the same afterwards.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_abi import encode

from rollup.genesis import DEV_ADDRESSES
from services.rpcclient import request
from tests.support import rpc, rpc_error
from vm.native.abi import selector
from vm.native.upgrades import UPGRADE_ADDRESS

pytestmark = pytest.mark.e2e

OWNER = "0x" + DEV_ADDRESSES[0].hex()  # the token template's manifest names dev account 0


def escapes(marker: Path) -> list[str]:
    """The review's payload and variants: each would create `marker` if it ever ran."""
    path = str(marker)
    return [
        f"import typing\ntyping.sys.modules['os'].system('touch {path}')\n",
        f"from typing import List\nList.__module__\nimport os\nos.system('touch {path}')\n",
        "from vm.native import App\n\n\nclass T(App):\n    pass\n\n\n"
        f"T.__init__.__globals__['__builtins__']['__import__']('os').system('touch {path}')\n",
        f"x = [c for c in ().__class__.__base__.__subclasses__()]\nx[0]('touch {path}')\n",
    ]


def upgrade_call(app: str, source: str, height: int) -> dict[str, Any]:
    data = selector("upgrade(address,bytes,uint64)") + encode(
        ["address", "bytes", "uint64"], [app, source.encode(), height]
    )
    return {"from": OWNER, "to": "0x" + UPGRADE_ADDRESS.hex(), "data": "0x" + data.hex()}


@pytest.mark.parametrize("method", ["eth_call", "eth_estimateGas", "eth_createAccessList"])
def test_a_simulated_upgrade_never_runs_the_code_it_carries(
    node: Any, chain: Any, token_address: str, tmp_path: Path, method: str
) -> None:
    code_before = rpc(node.url, "eth_getCode", token_address, "latest")
    head = int(rpc(node.url, "eth_blockNumber"), 16)
    for source in escapes(tmp_path / "pwned"):
        # a web page's "simple" request: text/plain, no preflight, an Origin of its own
        answer = post(
            node.url,
            method,
            [upgrade_call(token_address, source, head + 2), "latest"],
            origin="https://evil.example",
        )
        assert "error" in answer or method == "eth_createAccessList", answer
    assert list(tmp_path.iterdir()) == []
    # the schedule is untouched: blocks past the height still hold the old code
    while int(rpc(node.url, "eth_blockNumber"), 16) <= head + 2:
        chain.fresh_account(eth=1)  # a block each
    assert rpc(node.url, "eth_getCode", token_address, "latest") == code_before


def test_a_simulated_upgrade_of_valid_code_is_answered_without_loading_it(
    node: Any, token_address: str
) -> None:
    """A well-formed upgrade by the owner simulates as the transaction would (so wallets can
    estimate it), from the static checks alone."""
    source = "from vm.native import App\n\n\nclass T(App):\n    pass\n"
    head = int(rpc(node.url, "eth_blockNumber"), 16)
    gas = int(rpc(node.url, "eth_estimateGas", upgrade_call(token_address, source, head + 5)), 16)
    assert gas > 21_000
    stranger = dict(upgrade_call(token_address, source, head + 5), **{"from": "0x" + "11" * 20})
    assert "only the app's owner" in rpc_error(node.url, "eth_call", stranger, "latest").reason


def post(url: str, method: str, params: list[Any], origin: str | None = None) -> Any:
    """A web page's "simple" cross-origin POST (text/plain, no preflight): the answer."""
    headers = {"content-type": "text/plain"}
    if origin is not None:
        headers["origin"] = origin
    with httpx.Client(trust_env=False, timeout=30) as client:
        return client.post(url, json=request(method, params), headers=headers).json()
