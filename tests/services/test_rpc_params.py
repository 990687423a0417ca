"""The JSON-RPC parameter shapes and the method tables, without a node."""

from __future__ import annotations

import pytest

from rollup.errors import InvalidParams, LimitExceeded
from sequencer.simulate import AccountOverride
from services.rpc import admin, bridge, debug, eth, messages, net, proofs, txpool, wallet
from services.rpc.methods import METHODS
from services.rpc.params import (
    MAX_LIST_ITEMS,
    ByHash,
    LogFilter,
    TraceConfig,
    block_tag,
    log_filter,
    state_overrides,
    trace_config,
)
from services.rpc.registry import compose, method

A = "0x" + "11" * 20
T = "0x" + "22" * 32


def test_a_log_filter_parses_into_its_typed_shape() -> None:
    flt = log_filter({"address": A, "topics": [None, [T, T], T], "fromBlock": "0x5"})
    assert flt == LogFilter(
        addresses=(bytes.fromhex("11" * 20),),
        topics=(None, (bytes.fromhex("22" * 32),) * 2, (bytes.fromhex("22" * 32),)),
        from_block=5,
        to_block="latest",
    )
    assert log_filter({"blockHash": T}).block_hash == bytes.fromhex("22" * 32)


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ({"blockHash": T, "fromBlock": "0x1"}, InvalidParams),
        ({"topics": [T] * 5}, InvalidParams),
        ({"address": [A] * (MAX_LIST_ITEMS + 1)}, LimitExceeded),
        ("not an object", InvalidParams),
    ],
)
def test_a_bad_log_filter_is_refused(value: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        log_filter(value)


def test_block_tags_name_a_number_a_tag_or_a_hash() -> None:
    assert block_tag(None) == "latest"
    assert block_tag("safe") == "safe"
    assert block_tag("0x10") == 16
    assert block_tag(T) == ByHash(bytes.fromhex("22" * 32))
    assert block_tag({"blockNumber": "0x2"}) == 2
    with pytest.raises(InvalidParams):
        block_tag({"nothing": 1})


def test_state_overrides_parse_per_account() -> None:
    parsed = state_overrides({A: {"balance": "0x1", "code": "0x", "stateDiff": {T: T}}})
    assert parsed == {
        bytes.fromhex("11" * 20): AccountOverride(
            balance=1, code=b"", state_diff={bytes.fromhex("22" * 32): bytes.fromhex("22" * 32)}
        )
    }
    with pytest.raises(InvalidParams, match="both 'state' and 'stateDiff'"):
        state_overrides({A: {"state": {}, "stateDiff": {}}})
    with pytest.raises(InvalidParams, match="unknown fields"):
        state_overrides({A: {"storage": {}}})


def test_trace_config() -> None:
    assert trace_config(None) == TraceConfig()
    wanted = TraceConfig(call_tracer=True, only_top=True)
    assert trace_config({"tracer": "callTracer", "tracerConfig": {"onlyTopCall": True}}) == wanted
    with pytest.raises(InvalidParams, match="not supported"):
        trace_config({"tracer": "prestateTracer"})


def test_the_method_table_is_the_namespaces_tables_and_nothing_else() -> None:
    tables = [
        eth.METHODS,
        net.METHODS,
        debug.METHODS,
        proofs.METHODS,
        messages.METHODS,
        bridge.METHODS,
        admin.METHODS,
        wallet.METHODS,
        txpool.METHODS,
    ]
    assert sum(len(t) for t in tables) == len(METHODS)
    for table in tables:
        assert table.items() <= METHODS.items()
    assert {name.split("_")[0] for name in net.METHODS} == {"net", "web3"}


def test_a_method_declared_twice_is_found() -> None:
    declared = {"eth_chainId": method(lambda node: "0x1")}
    with pytest.raises(ValueError, match="eth_chainId"):
        compose(eth.METHODS, declared)


def test_optional_parameters_are_counted() -> None:
    assert METHODS["eth_getBalance"].required == 1
    assert len(METHODS["eth_getBalance"].parsers) == 2
    assert METHODS["eth_call"].runs == "budget"
    assert METHODS["eth_getLogs"].runs == "thread"
    assert METHODS["debug_traceTransaction"].runs == "isolated"


def test_the_operators_da_and_upgrade_methods_take_the_token_and_are_private() -> None:
    for name in ("admin_pauseDA", "admin_resumeDA", "admin_upgrades"):
        declared = METHODS[name]
        assert declared.private and declared.required == 1
        assert declared.parsers == (admin.parse_token,)
    assert METHODS["admin_pauseDA"].runs == "thread"  # it waits for a posting cycle in flight
    assert METHODS["rollup_getMessage"].runs == "thread"  # it may read many blocks
    assert METHODS["rollup_getBusChannels"].required == 0
    assert METHODS["rollup_getBridgeStatus"].required == 0
    assert messages.parse_peers(["0x1", "0x2"]) == [1, 2]
    with pytest.raises(InvalidParams):
        messages.parse_peers("0x1")
    assert bridge.parse_limit("0x5") == 5
    with pytest.raises(InvalidParams):
        bridge.parse_limit("0x0")
