// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// A withdrawal target that, when paid, calls the Portal again with `reentry` (the calldata of
/// finalizeWithdrawal for its own withdrawal), records what that call answered, and then
/// fails or not as `failAfter` says.
contract ReentrantTarget {
    address public immutable portal;
    bytes public reentry;
    bool public failAfter;
    bool public reentered; // did the inner call succeed?
    bytes public reentryError;
    uint256 public calls;

    constructor(address portal_) {
        portal = portal_;
    }

    function arm(bytes calldata call, bool fail) external {
        reentry = call;
        failAfter = fail;
    }

    fallback() external payable {
        calls += 1;
        (bool ok, bytes memory answer) = portal.call(reentry);
        reentered = ok;
        reentryError = answer;
        if (failAfter) revert("target failed");
    }
}
