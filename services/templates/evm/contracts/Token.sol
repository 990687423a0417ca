// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import "IAppBus.sol";

/// An ERC-20: what `rollup new NAME --template evm` deploys at genesis.
/// Reverts use both shapes wallets decode: Error(string) and custom errors.
///
/// `sendTo` moves tokens to an account inside an app on another chain (an exchange, say) over
/// the cross-app message bus, as the native token template does: the tokens stay here, held by
/// that app's remote account, and the app is told `receive_tokens(owner, value)`. The app pays
/// them out with a plain `transfer` from its remote account. If it refuses them, or the
/// message expires, the callback gives them back.
contract Token {
    string public name;
    string public symbol;
    uint8 public constant decimals = 18;
    uint256 public totalSupply;
    address public owner;

    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    event SentToApp(bytes32 indexed id, uint64 chain, address app, address to, uint256 value);
    event SendSettled(bytes32 indexed id, bool delivered);

    error NotOwner(address caller);
    error NotTheBus(address caller);

    struct Pending {
        address owner;
        address holder;
        uint256 value;
    }

    mapping(bytes32 => Pending) public pending;

    constructor(string memory name_, string memory symbol_, uint256 supply) {
        name = name_;
        symbol = symbol_;
        owner = msg.sender;
        _mint(msg.sender, supply);
    }

    function transfer(address to, uint256 value) external returns (bool) {
        _transfer(msg.sender, to, value);
        return true;
    }

    function approve(address spender, uint256 value) external returns (bool) {
        allowance[msg.sender][spender] = value;
        emit Approval(msg.sender, spender, value);
        return true;
    }

    function transferFrom(address from, address to, uint256 value) external returns (bool) {
        uint256 allowed = allowance[from][msg.sender];
        if (allowed != type(uint256).max) {
            require(allowed >= value, "ERC20: insufficient allowance");
            allowance[from][msg.sender] = allowed - value;
        }
        _transfer(from, to, value);
        return true;
    }

    function mint(address to, uint256 value) external {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        _mint(to, value);
    }

    function sendTo(uint64 chain, address app, address to, uint256 value)
        external
        returns (bytes32 id)
    {
        address holder = AppBusLib.remoteAddress(chain, app);
        _transfer(msg.sender, holder, value);
        bytes memory data = abi.encodeWithSignature("receive_tokens(address,uint256)", to, value);
        id = IAppBus(AppBusLib.APP_BUS).send(
            chain, app, data, 500_000, 86_400, this.onSent.selector, 200_000
        );
        pending[id] = Pending(msg.sender, holder, value);
        emit SentToApp(id, chain, app, to, value);
    }

    /// The bus's answer to `sendTo`: runs exactly once per send.
    function onSent(bytes32 id, bool ok, bytes calldata) external {
        if (msg.sender != AppBusLib.BUS) revert NotTheBus(msg.sender);
        Pending memory p = pending[id];
        delete pending[id];
        if (!ok && p.value > 0) {
            _transfer(p.holder, p.owner, p.value);
        }
        emit SendSettled(id, ok);
    }

    function _transfer(address from, address to, uint256 value) internal {
        require(to != address(0), "ERC20: transfer to the zero address");
        uint256 balance = balanceOf[from];
        require(balance >= value, "ERC20: transfer amount exceeds balance");
        unchecked {
            balanceOf[from] = balance - value;
        }
        balanceOf[to] += value;
        emit Transfer(from, to, value);
    }

    function _mint(address to, uint256 value) internal {
        totalSupply += value;
        balanceOf[to] += value;
        emit Transfer(address(0), to, value);
    }
}
