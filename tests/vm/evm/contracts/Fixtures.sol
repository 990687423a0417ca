// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// A minimal ERC-20: mint to the deployer, transfer, approve, transferFrom.
contract Token {
    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;
    uint256 public totalSupply;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    constructor(uint256 supply) {
        balanceOf[msg.sender] = supply;
        totalSupply = supply;
        emit Transfer(address(0), msg.sender, supply);
    }

    function transfer(address to, uint256 value) external returns (bool) {
        require(balanceOf[msg.sender] >= value, "insufficient balance");
        balanceOf[msg.sender] -= value;
        balanceOf[to] += value;
        emit Transfer(msg.sender, to, value);
        return true;
    }

    function approve(address spender, uint256 value) external returns (bool) {
        allowance[msg.sender][spender] = value;
        emit Approval(msg.sender, spender, value);
        return true;
    }

    function transferFrom(address from, address to, uint256 value) external returns (bool) {
        allowance[from][msg.sender] -= value;
        balanceOf[from] -= value;
        balanceOf[to] += value;
        emit Transfer(from, to, value);
        return true;
    }
}

/// Every way a call can fail, plus storage the tests clear for a refund.
contract Failing {
    error Custom(uint256 code, address who);

    uint256 public stored;
    mapping(uint256 => uint256) public slots;

    function withReason() external pure { revert("nope"); }
    function withPanic() external pure returns (uint256) { uint256[] memory a; return a[1]; }
    function withCustom() external view { revert Custom(42, msg.sender); }
    function divide(uint256 a, uint256 b) external pure returns (uint256) { return a / b; }
    function burnGas() external pure { while (true) {} }
    function setThenRevert(uint256 v) external { stored = v; revert("after write"); }
    function fill(uint256 n) external { for (uint256 i = 0; i < n; i++) slots[i] = i + 1; }
    function clear(uint256 n) external { for (uint256 i = 0; i < n; i++) delete slots[i]; }
}

contract Child {
    address public owner;
    uint256 public salt;
    constructor(address owner_, uint256 salt_) payable { owner = owner_; salt = salt_; }
    function destroy(address payable to) external { selfdestruct(to); }
}

/// CREATE and CREATE2 from a contract, and a child destroyed in the transaction creating it.
contract Factory {
    event Deployed(address child);

    function create2(bytes32 salt) external payable returns (address child) {
        child = address(new Child{salt: salt, value: msg.value}(msg.sender, uint256(salt)));
        emit Deployed(child);
    }

    function create() external returns (address child) {
        child = address(new Child(msg.sender, 0));
        emit Deployed(child);
    }

    function predict(bytes32 salt) external view returns (address) {
        bytes memory init = abi.encodePacked(
            type(Child).creationCode, abi.encode(msg.sender, uint256(salt))
        );
        return address(uint160(uint256(keccak256(
            abi.encodePacked(bytes1(0xff), address(this), salt, keccak256(init))
        ))));
    }

    function createAndDestroy(address payable to) external payable returns (address child) {
        Child c = new Child{value: msg.value}(msg.sender, 0);
        c.destroy(to);
        child = address(c);
    }

    function destroyExisting(address child, address payable to) external {
        Child(child).destroy(to);
    }
}

/// Precompiles, self-calls, value, block context and transient storage.
contract Probe {
    uint256 public depth;
    uint256 public received;
    event Got(address from, uint256 value);

    receive() external payable { received += msg.value; emit Got(msg.sender, msg.value); }

    function recover(bytes32 h, uint8 v, bytes32 r, bytes32 s) external pure returns (address) {
        return ecrecover(h, v, r, s);
    }

    function sha(bytes calldata data) external pure returns (bytes32) { return sha256(data); }

    function identity(bytes calldata data) external view returns (bytes memory out) {
        (bool ok, bytes memory ret) = address(4).staticcall(data);
        require(ok);
        out = ret;
    }

    function recurse(uint256 n) external returns (uint256) {
        depth = n;
        if (n == 0) return 0;
        return this.recurse(n - 1) + 1;
    }

    function tryFail(address target) external returns (bool ok) {
        (ok, ) = target.call(abi.encodeWithSignature("withReason()"));
        depth = ok ? 1 : 2;
    }

    function forward(address payable to) external payable {
        (bool ok, ) = to.call{value: msg.value}("");
        require(ok, "forward failed");
    }

    function context() external view returns (
        uint256 chain, uint256 number, uint256 time, address coinbase, uint256 gaslimit,
        uint256 price, address origin, uint256 basefee
    ) {
        return (block.chainid, block.number, block.timestamp, block.coinbase, block.gaslimit,
                tx.gasprice, tx.origin, block.basefee);
    }

    function useTransient(uint256 v) external returns (uint256 before, uint256 afterwards) {
        assembly {
            before := tload(0)
            tstore(0, v)
            afterwards := tload(0)
        }
    }

    function balanceOfAccount(address who) external view returns (uint256) { return who.balance; }
}
