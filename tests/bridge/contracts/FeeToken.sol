// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {TestToken} from "./TestToken.sol";

/// A fee-on-transfer ERC-20: every transfer burns 1% of the amount, so the receiver gets less
/// than was sent.
contract FeeToken is TestToken {
    constructor() TestToken("Fee Token", "FEE", 18) {}

    function _move(address from, address to, uint256 amount) internal override {
        uint256 fee = amount / 100;
        balanceOf[from] -= amount;
        balanceOf[to] += amount - fee;
        totalSupply -= fee;
        emit Transfer(from, to, amount - fee);
        emit Transfer(from, address(0), fee);
    }
}
