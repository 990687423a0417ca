// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title What an EVM app uses to call apps on other chains (semantics: README, "Cross-app
/// messages"): `IAppBus(AppBusLib.APP_BUS).send{value: v}(...)`. Results arrive as a call
/// from BUS to the callback you named:
///     function onResult(bytes32 id, bool ok, bytes calldata data) external {
///         require(msg.sender == AppBusLib.BUS, "only the bus");
///         ...   // runs exactly once per call; `data` is the return or revert data
///     }
/// A call you receive from an app on another chain has
/// `msg.sender == AppBusLib.remoteAddress(thatChain, thatApp)`.
interface IAppBus {
    function send(
        uint64 dstChain,
        address target,
        bytes calldata data,
        uint64 gas,
        uint64 ttl,
        bytes4 callback,
        uint64 callbackGas
    ) external payable returns (bytes32 id);

    function nextNonce(uint64 dstChain) external view returns (uint64);
}

library AppBusLib {
    /// Who calls your callbacks (and holds value in flight); it has no code.
    address internal constant BUS = 0x00000000000000000000000000000000000f0002;
    /// The AppBus system contract you call to send.
    address internal constant APP_BUS = 0x00000000000000000000000000000000000F0003;

    function remoteAddress(uint64 chainId, address sender) internal pure returns (address) {
        return address(uint160(uint256(keccak256(abi.encodePacked("app-rollup:remote:", chainId, sender)))));
    }
}
