"""The debug_ namespace: transaction tracing, for EVM apps."""

from __future__ import annotations

from typing import Any

from rollup.errors import InvalidParams, TxRejected
from sequencer.node import Sequencer
from services.rpc import codec
from services.rpc.params import TraceConfig, trace_config
from services.rpc.registry import Method, method
from vm.evm import EvmVM
from vm.evm.trace import call_tree, struct_logs, trace_in_block

__all__ = ["METHODS"]


def trace_transaction(
    node: Sequencer, tx_hash: bytes, config: TraceConfig | None = None
) -> dict[str, Any]:
    """Replays the transaction's block up to it on a scratch engine loaded with the parent
    block's whole state, O(state) per call (see vm/evm/trace.py for what is traced)."""
    if not node.evm:
        raise InvalidParams("debug_traceTransaction traces EVM apps only")
    status = node.transaction(tx_hash)
    if status is None or status.block is None:
        raise TxRejected("transaction not found")
    block = status.block
    parent = block.header.number - 1
    state = node.state_at(parent)
    scratch = EvmVM(node.chain_id, node.manifest.gas_limit, node.state.items_at(parent))
    trace = trace_in_block(state, block, status.index, scratch)
    config = config or TraceConfig()
    if config.call_tracer:
        tree = call_tree(trace)
        if config.only_top:
            tree.pop("calls", None)
        return tree
    return struct_logs(trace, config.limit)


METHODS: dict[str, Method] = {
    "debug_traceTransaction": method(
        trace_transaction, codec.parse_hash, trace_config, required=1, runs="isolated"
    ),
}
