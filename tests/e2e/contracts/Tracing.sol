// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

contract Callee {
    uint256 public stored;

    function store(uint256 value) external returns (uint256) {
        stored = value;
        return value * 2;
    }

    function fail() external pure {
        revert("callee says no");
    }
}

contract Child {
    uint256 public immutable seed;

    constructor(uint256 seed_) payable {
        seed = seed_;
    }
}

/// One transaction that opens every kind of frame the call tracer reports.
contract Tracer {
    Callee public callee;

    constructor() {
        callee = new Callee();
    }

    function everything(uint256 value) external payable returns (bytes32) {
        callee.store(value);
        try callee.fail() {} catch {}
        bytes32 digest = sha256(abi.encode(value));
        new Child{salt: bytes32(value), value: msg.value}(value);
        (bool ok, ) = address(callee).staticcall(abi.encodeWithSignature("stored()"));
        require(ok);
        return digest;
    }
}
