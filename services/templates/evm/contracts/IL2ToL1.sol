// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title What an EVM app uses to send value to the L1 (semantics: bridge/README.md):
/// `IL2ToL1(L2ToL1Lib.L2_TO_L1).initiateWithdrawal{value: v}(target, gasLimit, data)`.
/// The value leaves this chain at once; on the L1, once a posted output root covers the
/// withdrawal and the chain's withdrawal delay has passed, anyone proves and finalizes it
/// (`rollup bridge finalize`), and the Portal pays `target` the value, calling it with
/// `data` and `gasLimit` when they are given. A bridged token's own `withdraw(l1Recipient,
/// amount)` does the same for tokens.
interface IL2ToL1 {
    event WithdrawalInitiated(
        address indexed sender,
        address indexed target,
        uint256 value,
        address l1Token,
        uint256 tokenAmount,
        uint64 gasLimit,
        bytes data
    );

    function initiateWithdrawal(address target, uint64 gasLimit, bytes calldata data)
        external
        payable;
}

library L2ToL1Lib {
    /// The L2ToL1 system contract of every EVM app chain.
    address internal constant L2_TO_L1 = 0x00000000000000000000000000000000000F0004;
}
