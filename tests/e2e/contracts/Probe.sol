// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// Small targets for eth_call state overrides, gas estimation and access lists.
contract Probe {
    uint256 public a;
    uint256 public b;

    error TooMany(uint256 rounds);

    function balanceAt(address who) external view returns (uint256) {
        return who.balance;
    }

    function sum() external view returns (uint256) {
        return a + b;
    }

    /// Writes and clears a slot: the clearing earns a refund, so the gas a transaction needs
    /// is more than the gas it ends up using.
    function churn(uint256 rounds) public {
        if (rounds > 1000) revert TooMany(rounds);
        for (uint256 i = 0; i < rounds; i++) {
            a = i + 1;
        }
        a = 0;
    }

    /// The same through an external self-call: the 63/64 rule applies to the inner frame.
    function outer(uint256 rounds) external {
        this.churn(rounds);
    }
}
