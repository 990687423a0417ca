// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

interface IPortalDeposits {
    function depositETH(uint64 chainId, address to, uint64 gasLimit, bytes calldata data)
        external
        payable;
}

/// A contract that deposits through the Portal (so the app chain sees its aliased address), and
/// that can receive what the escape hatch pays its alias.
contract Depositor {
    function deposit(address portal, uint64 chainId, address to, uint64 gasLimit)
        external
        payable
    {
        IPortalDeposits(portal).depositETH{value: msg.value}(chainId, to, gasLimit, "");
    }

    receive() external payable {}
}
