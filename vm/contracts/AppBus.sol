// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title The cross-app message bus of an EVM app chain: the system contract at
/// APP_BUS_ADDRESS (0x...0f0003).
/// @notice `send` numbers a message on its channel, computes its id exactly as the node does
/// (rollup/messages.py), passes `msg.value` to BUS (0x...0f0002, the escrow, no code) and logs
/// MessageSent; the state-transition function turns each such log of a successful transaction
/// into one of the block's outbound messages (vm/bus.py `sent_messages`). Callbacks come from
/// BUS: `callback(bytes32 id, bool ok, bytes data)` on the sending contract.
contract AppBus {
    address internal constant BUS = 0x00000000000000000000000000000000000f0002;

    /// Next nonce per destination chain. Slot 0: vm/bus.py reads and writes the same counter.
    mapping(uint64 => uint64) public nextNonce;

    uint64 public constant MAX_CHAIN_ID = 2 ** 53 - 1;
    uint64 public constant MAX_CALL_GAS = 30_000_000;
    uint64 public constant MAX_TTL = 30 days;
    uint256 public constant MAX_DATA = 128 * 1024;

    /// `payload` is the message's packed call payload: uint8(0), value, gas, expiry, reply,
    /// data (rollup/messages.py), so the node rebuilds the message and its id from this log.
    event MessageSent(
        bytes32 indexed id,
        uint64 indexed dstChain,
        address indexed sender,
        uint64 nonce,
        address target,
        bytes4 callback,
        uint64 callbackGas,
        bytes payload
    );

    error BadMessage(string reason);

    /// Call `target` on chain `dstChain` with `data` and `gas`, if a block there comes within
    /// `ttl` seconds; `callback` (0: none) on the caller gets the result with `callbackGas`.
    function send(
        uint64 dstChain,
        address target,
        bytes calldata data,
        uint64 gas,
        uint64 ttl,
        bytes4 callback,
        uint64 callbackGas
    ) external payable returns (bytes32 id) {
        _check(dstChain, data.length, gas, ttl, callbackGas);
        uint64 nonce = nextNonce[dstChain]++;
        bytes memory payload = abi.encodePacked(
            uint8(0), msg.value, gas, uint64(block.timestamp) + ttl,
            callback != bytes4(0) || msg.value > 0, data
        );
        id = keccak256(
            abi.encodePacked(
                uint8(1), uint64(block.chainid), uint64(block.number), nonce, dstChain,
                msg.sender, target, payload
            )
        );
        emit MessageSent(id, dstChain, msg.sender, nonce, target, callback, callbackGas, payload);
        if (msg.value > 0) {
            (bool ok,) = BUS.call{value: msg.value}("");
            if (!ok) revert BadMessage("escrow transfer failed");
        }
    }

    function _check(uint64 dstChain, uint256 size, uint64 gas, uint64 ttl, uint64 callbackGas)
        private
        view
    {
        if (dstChain == 0 || dstChain > MAX_CHAIN_ID) revert BadMessage("destination chain out of range");
        if (dstChain == block.chainid) revert BadMessage("cannot send a message to the own chain");
        if (size > MAX_DATA) revert BadMessage("message data too large");
        if (gas > MAX_CALL_GAS || callbackGas > MAX_CALL_GAS) revert BadMessage("gas out of range");
        if (ttl == 0 || ttl > MAX_TTL) revert BadMessage("ttl out of range");
    }
}
