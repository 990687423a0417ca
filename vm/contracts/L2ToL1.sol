// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// What L2ToL1 asks of the contract that calls `initiateTokenWithdrawal`.
interface IBridgedTokenOrigin {
    function l1Token() external view returns (address);
}

/// @title Withdrawals to the L1: the system contract at L2_TO_L1_ADDRESS (0x...0f0004) of an
/// EVM app chain (bridge/README.md).
/// @notice Each call logs one WithdrawalInitiated; the state-transition function numbers the
/// logs of successful transactions in log order (the withdrawal's nonce), appends them to the
/// chain's withdrawals tree and burns this contract's balance after each transaction, so the
/// value leaves the chain's supply. The L1 Portal pays them once an output root covers them.
contract L2ToL1 {
    uint64 public constant MAX_GAS_LIMIT = 30_000_000;
    uint256 public constant MAX_DATA = 120_000;

    event WithdrawalInitiated(
        address indexed sender,
        address indexed target,
        uint256 value,
        address l1Token,
        uint256 tokenAmount,
        uint64 gasLimit,
        bytes data
    );

    error ZeroTarget();
    error GasLimitTooHigh(uint64 gasLimit, uint64 max);
    error DataTooLarge(uint256 size, uint256 max);
    error NotBridgedToken(address caller, address l1Token);

    /// Send `msg.value` to `target` on the L1 and call it there with `data` and `gasLimit`.
    function initiateWithdrawal(address target, uint64 gasLimit, bytes calldata data)
        external
        payable
    {
        if (target == address(0)) revert ZeroTarget();
        if (gasLimit > MAX_GAS_LIMIT) revert GasLimitTooHigh(gasLimit, MAX_GAS_LIMIT);
        if (data.length > MAX_DATA) revert DataTooLarge(data.length, MAX_DATA);
        emit WithdrawalInitiated(msg.sender, target, msg.value, address(0), 0, gasLimit, data);
    }

    /// Called by a bridged token's `withdraw`, which has burned `amount` of `from`'s tokens:
    /// pay `amount` of the L1 token to `target`. Only the canonical bridged token of an L1
    /// token may ask (the log does not name the caller, so the check is here).
    function initiateTokenWithdrawal(address from, address target, uint256 amount) external {
        if (target == address(0)) revert ZeroTarget();
        address l1Token = IBridgedTokenOrigin(msg.sender).l1Token();
        if (msg.sender != bridgedToken(l1Token)) revert NotBridgedToken(msg.sender, l1Token);
        emit WithdrawalInitiated(from, target, 0, l1Token, amount, 0, "");
    }

    /// Where `l1Token`'s bridged token lives (rollup/deposits.py `bridged_token_address`).
    function bridgedToken(address l1Token) public pure returns (address) {
        bytes32 hash = keccak256(abi.encodePacked("app-rollup:bridged-token:", l1Token));
        return address(uint160(uint256(hash)));
    }
}
