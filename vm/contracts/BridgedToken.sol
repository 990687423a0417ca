// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// What a bridged token asks of L2ToL1 (L2ToL1.sol).
interface IL2ToL1TokenWithdrawals {
    function initiateTokenWithdrawal(address from, address target, uint256 amount) external;
}

/// @title An L1 token on an EVM app chain: the runtime the state-transition function installs
/// at bridgedToken(l1Token) on the token's first deposit (bridge/README.md).
/// @notice There is no constructor: the node writes slots 3 to 5 directly, and the escape hatch
/// on the L1 proves balances in slot 0's mapping, so the layout below is a format:
///   slot 0  balanceOf        slot 1  allowance      slot 2  totalSupply
///   slot 3  l1Token          slot 4  decimals       slot 5  symbol (bytes32, zero-padded)
/// Deposits mint through `bridgeMint`, callable only by the bridge's system address; `withdraw`
/// burns and asks L2ToL1 to pay the tokens out on the L1.
contract BridgedToken {
    address internal constant BRIDGE = address(0x0f0005);
    address internal constant L2_TO_L1 = address(0x0f0004);

    mapping(address => uint256) public balanceOf; // slot 0
    mapping(address => mapping(address => uint256)) public allowance; // slot 1
    uint256 public totalSupply; // slot 2
    address public l1Token; // slot 3
    uint256 internal decimals_; // slot 4: a whole word, so it is not packed into slot 3
    bytes32 internal symbol_; // slot 5

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    error NotBridge(address caller);
    error InsufficientBalance(address account, uint256 balance, uint256 needed);
    error InsufficientAllowance(address owner, address spender, uint256 allowance, uint256 needed);
    error InvalidReceiver(address receiver);

    function name() external view returns (string memory) {
        return string.concat("Bridged ", symbol());
    }

    function symbol() public view returns (string memory) {
        bytes32 raw = symbol_;
        uint256 length = 0;
        while (length < 32 && raw[length] != 0) length++;
        bytes memory text = new bytes(length);
        for (uint256 i = 0; i < length; i++) {
            text[i] = raw[i];
        }
        return string(text);
    }

    function decimals() external view returns (uint8) {
        return uint8(decimals_);
    }

    /// Credit a deposit (the bridge's system address only).
    function bridgeMint(address to, uint256 amount) external {
        if (msg.sender != BRIDGE) revert NotBridge(msg.sender);
        totalSupply += amount;
        balanceOf[to] += amount;
        emit Transfer(address(0), to, amount);
    }

    /// Burn `amount` of the caller's tokens and have them paid to `l1Recipient` on the L1.
    function withdraw(address l1Recipient, uint256 amount) external {
        _burn(msg.sender, amount);
        IL2ToL1TokenWithdrawals(L2_TO_L1).initiateTokenWithdrawal(msg.sender, l1Recipient, amount);
    }

    function transfer(address to, uint256 amount) external returns (bool) {
        _move(msg.sender, to, amount);
        return true;
    }

    function approve(address spender, uint256 amount) external returns (bool) {
        allowance[msg.sender][spender] = amount;
        emit Approval(msg.sender, spender, amount);
        return true;
    }

    /// An allowance of 2**256 - 1 is never spent down.
    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        uint256 allowed = allowance[from][msg.sender];
        if (allowed != type(uint256).max) {
            if (allowed < amount) revert InsufficientAllowance(from, msg.sender, allowed, amount);
            allowance[from][msg.sender] = allowed - amount;
        }
        _move(from, to, amount);
        return true;
    }

    function _move(address from, address to, uint256 amount) private {
        if (to == address(0)) revert InvalidReceiver(to);
        uint256 balance = balanceOf[from];
        if (balance < amount) revert InsufficientBalance(from, balance, amount);
        balanceOf[from] = balance - amount;
        balanceOf[to] += amount;
        emit Transfer(from, to, amount);
    }

    function _burn(address from, uint256 amount) private {
        uint256 balance = balanceOf[from];
        if (balance < amount) revert InsufficientBalance(from, balance, amount);
        balanceOf[from] = balance - amount;
        totalSupply -= amount;
        emit Transfer(from, address(0), amount);
    }
}
