"""Deploy another copy of this app's Token with web3.py, as a Foundry or Hardhat script would.

    python deploy.py --rpc http://127.0.0.1:8546 [--key 0x...] [--supply N]

The copy at genesis needs no script: `rollup up` deploys it (rollup.toml's [app.init]).
The contract is compiled by npm solc into build/Token.json when it is missing or stale.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from eth_account import Account
from web3 import Web3

from rollup.genesis import DEV_KEYS
from services.apps import load_app
from vm.evm.artifact import Artifact

APP_DIR = Path(__file__).resolve().parent


def artifact() -> Artifact:
    code = load_app(APP_DIR).code
    assert isinstance(code, Artifact)
    return code


def deploy(w3: Web3, key: str, name: str, symbol: str, supply: int) -> Any:
    """Send the creation transaction and return the deployed contract (web3.py object)."""
    token = artifact()
    account = Account.from_key(key)
    factory = w3.eth.contract(abi=token.abi, bytecode=token.bytecode)
    tx = factory.constructor(name, symbol, supply).build_transaction(
        {"from": account.address, "nonce": w3.eth.get_transaction_count(account.address)}
    )
    tx_hash = w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)
    if receipt["status"] != 1:
        raise SystemExit(f"deployment failed in transaction {tx_hash.hex()}")
    return w3.eth.contract(address=receipt["contractAddress"], abi=token.abi)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rpc", default="http://127.0.0.1:8546")
    parser.add_argument("--key", default=DEV_KEYS[1], help="default: dev account 1")
    parser.add_argument("--name", default="Second Token")
    parser.add_argument("--symbol", default="TWO")
    parser.add_argument("--supply", type=int, default=10**24)
    args = parser.parse_args()
    w3 = Web3(Web3.HTTPProvider(args.rpc))
    contract = deploy(w3, args.key, args.name, args.symbol, args.supply)
    print(f"{args.symbol} deployed at {contract.address}")


if __name__ == "__main__":
    main()
