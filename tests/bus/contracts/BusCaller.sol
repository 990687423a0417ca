// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import "IAppBus.sol";

/// An EVM app that calls a native app on another chain through the AppBus and counts results.
contract BusCaller {
    uint256 public callbacks;
    uint256 public lastValue;
    bool public lastOk;
    bytes32 public lastId;

    receive() external payable {}

    function ping(uint64 chain, address target, uint256 k) external payable returns (bytes32) {
        bytes memory data = abi.encodeWithSignature("pong(uint256)", k);
        return IAppBus(AppBusLib.APP_BUS).send{value: msg.value}(
            chain, target, data, 200_000, 3_600, this.onResult.selector, 200_000
        );
    }

    function onResult(bytes32 id, bool ok, bytes calldata data) external {
        require(msg.sender == AppBusLib.BUS, "only the bus");
        callbacks += 1;
        lastId = id;
        lastOk = ok;
        if (ok) {
            lastValue = abi.decode(data, (uint256));
        }
    }
}
