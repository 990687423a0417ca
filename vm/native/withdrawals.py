"""The native VM's side of withdrawals to the L1: the system call at L2_TO_L1_ADDRESS.

    initiateWithdrawal(address target, uint64 gasLimit, bytes data)   payable
A transaction (or a deposit's call) to L2_TO_L1_ADDRESS with this calldata withdraws its value
to `target` on the L1, as the EVM chains' L2ToL1 contract does; apps use the SDK's
`App.withdraw` instead. Either logs WithdrawalInitiated from L2_TO_L1_ADDRESS, as the EVM's
contract does; vm/bridge.py numbers the withdrawal, burns the value and adds it to the
withdrawals tree once the execution succeeds.
"""

from __future__ import annotations

from rollup.deposits import L2_TO_L1_ADDRESS
from rollup.types import Address
from vm.bridge import WithdrawError, start_withdrawal, withdrawal_log
from vm.interface import ExecResult, Message
from vm.native.abi import AbiError, decode_args, selector
from vm.native.runtime import error_data
from vm.state import State, code_key

__all__ = ["INITIATE_SELECTOR", "WITHDRAW_GAS", "install_l2_to_l1", "request_withdrawal"]

INITIATE_SELECTOR = selector("initiateWithdrawal(address,uint64,bytes)")
WITHDRAW_GAS = 40_000  # plus 16 a data byte: about what OP's L2ToL1MessagePasser costs
SYSTEM_CODE = b"\xfe" + b"rollup-system:l2-to-l1"


def install_l2_to_l1(state: State) -> None:
    """Code at the system address, so transactions to it are calls, not plain transfers."""
    state.set(code_key(L2_TO_L1_ADDRESS), SYSTEM_CODE)


def request_withdrawal(state: State, msg: Message) -> ExecResult:
    """The system call behind L2_TO_L1_ADDRESS; never raises."""
    if msg.data[:4] != INITIATE_SELECTOR:
        return ExecResult(False, 0, error_data("expected initiateWithdrawal(address,uint64,bytes)"))
    try:
        target, gas_limit, data = decode_args(["address", "uint64", "bytes"], msg.data[4:])
    except AbiError as exc:
        return ExecResult(False, 0, error_data(f"invalid withdrawal: {exc}"))
    gas = WITHDRAW_GAS + 16 * len(data)
    if msg.gas < gas:
        return ExecResult(False, msg.gas, b"")
    try:
        request = start_withdrawal(state, msg.sender, Address(target), msg.value, gas_limit, data)
    except WithdrawError as exc:
        return ExecResult(False, gas, error_data(str(exc)))
    return ExecResult(True, gas, b"", (withdrawal_log(request),))
