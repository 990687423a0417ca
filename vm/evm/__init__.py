"""The EVM adapter: Ethereum bytecode behind the same port as the native VM.

    from vm.evm import EvmVM
    vm = EvmVM(chain_id, gas_limit, items)   # items: the whole state the chain starts from

`EvmVM` runs each message in revm (pyrevm 0.3.7) under Cancun rules and writes every account,
code and storage slot the message changed into our `State`, under the flat keys native state
uses, so the STF's diff, the state root and the store see EVM state like any other. The STF
keeps admission, nonces, fees and receipts; the engine only executes.

    engine   pyrevm behind four calls (set_block, put_account, put_storage, run), each run
             bracketed by snapshot/revert so it starts cold and leaves nothing behind
    journal  what a run touched, read from revm's journaled state (pyrevm has no diff API)
    machine  `EvmVM`: keeps the engine's full mirror of the state equal to `State`, reruns a
             message whose reads turn out stale, and writes the diff back
"""

from vm.evm.engine import SPEC
from vm.evm.machine import EvmVM

__all__ = ["EvmVM", "SPEC"]
