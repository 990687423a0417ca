// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

// Contracts of the differential test (tests/e2e/test_evm_differential.py): the same signed
// transactions run on an EVM app node and on Anvil must leave the same receipts and state.
// Nothing here reads BASEFEE, BLOCKHASH, TIMESTAMP, NUMBER, COINBASE, PREVRANDAO, GASLIMIT or
// GASPRICE: the two chains differ in those on purpose (see the test's docstring).

enum Kind { A, B }

/// Every way a call can fail: Error(string), each Panic code, custom errors, a bare revert, a
/// write undone by its revert, out of gas and an invalid opcode.
contract Reverter {
    error Unauthorized();
    error Custom(uint256 code, address who);

    uint256 public stored;
    uint256[] internal items;

    function withReason() external pure { revert("nope"); }
    function withRequire(uint256 x) external pure returns (uint256) {
        require(x > 10, "x too small");
        return x;
    }
    function bare() external pure { revert(); }
    function custom() external view { revert Custom(42, msg.sender); }
    function customNoArgs() external pure { revert Unauthorized(); }
    function panicAssert() external pure { assert(false); }
    function panicOverflow(uint256 a) external pure returns (uint256) { return a + type(uint256).max; }
    function panicDivide(uint256 a, uint256 b) external pure returns (uint256) { return a / b; }
    function panicEnum(uint256 v) external pure returns (uint8) { return uint8(Kind(v)); }
    function panicPop() external { items.pop(); }
    function panicIndex(uint256 i) external view returns (uint256) { return items[i]; }
    function panicAlloc(uint256 n) external pure returns (uint256) { return new uint256[](n).length; }
    function setThenRevert(uint256 v) external { stored = v; revert("after write"); }
    function set(uint256 v) external { stored = v; }
    function burnGas() external pure { while (true) {} }
    function invalid() external pure { assembly { invalid() } }
}

/// Storage written, cleared and restored within one transaction: SSTORE prices and refunds
/// (EIP-2200, EIP-2929, EIP-3529's cap of a fifth of the gas used).
contract Refunds {
    mapping(uint256 => uint256) public slots;
    uint256 public counter;

    function fill(uint256 n) external { for (uint256 i = 0; i < n; i++) slots[i] = i + 1; }
    function clear(uint256 n) external { for (uint256 i = 0; i < n; i++) delete slots[i]; }
    function restore(uint256 i) external {
        uint256 old = slots[i];
        slots[i] = old + 100;
        slots[i] = old;
    }
    function zeroThenBack(uint256 i) external {
        uint256 old = slots[i];
        slots[i] = 0;
        slots[i] = old;
    }
    function createThenClear(uint256 i) external {
        slots[i] = 7;
        slots[i] = 0;
    }
    function bump() external returns (uint256) { return ++counter; }
}

contract Child {
    address public immutable parent;
    uint256 public born;

    event Born(address indexed parent, uint256 value, bytes32 salt);

    constructor(bytes32 salt) payable {
        parent = msg.sender;
        born = msg.value + 1;
        emit Born(msg.sender, msg.value, salt);
    }

    function destroy(address payable to) external { selfdestruct(to); }

    receive() external payable {}
}

/// CREATE and CREATE2, a CREATE2 collision, and selfdestruct in and after the creating
/// transaction (EIP-6780).
contract Factory {
    address public last;
    uint256 public made;

    event Made(address child, bool viaCreate2);

    function create() external payable returns (address child) {
        child = address(new Child{value: msg.value}(bytes32(0)));
        _made(child, false);
    }

    function create2(bytes32 salt) external payable returns (address child) {
        child = address(new Child{salt: salt, value: msg.value}(salt));
        _made(child, true);
    }

    function predict(bytes32 salt) external view returns (address) {
        bytes memory init = abi.encodePacked(type(Child).creationCode, abi.encode(salt));
        bytes32 digest = keccak256(abi.encodePacked(bytes1(0xff), address(this), salt, keccak256(init)));
        return address(uint160(uint256(digest)));
    }

    function create2Twice(bytes32 salt) external returns (bool second) {
        _made(address(new Child{salt: salt}(salt)), true);
        try new Child{salt: salt}(salt) returns (Child again) {
            _made(address(again), true);
            second = true;
        } catch {
            second = false;
        }
    }

    function createAndDestroy(address payable to) external payable returns (address child) {
        Child c = new Child{value: msg.value}(bytes32(uint256(1)));
        c.destroy(to);
        child = address(c);
        _made(child, false);
    }

    function codeInfo(address who) external view returns (uint256 size, bytes32 hash, uint256 bal) {
        assembly {
            size := extcodesize(who)
            hash := extcodehash(who)
            bal := balance(who)
        }
    }

    function _made(address child, bool viaCreate2) internal {
        last = child;
        made += 1;
        emit Made(child, viaCreate2);
    }
}

/// The precompiles at 0x01 .. 0x0a, called with caller-given input and gas.
contract Precompiles {
    bytes32 public lastHash;
    uint256 public calls;

    event Called(uint256 indexed precompile, bool ok, bytes out);

    function recover(bytes32 h, uint8 v, bytes32 r, bytes32 s) external pure returns (address) {
        return ecrecover(h, v, r, s);
    }

    function sha(bytes calldata data) external pure returns (bytes32) { return sha256(data); }

    function ripemd(bytes calldata data) external pure returns (bytes20) { return ripemd160(data); }

    function call(uint256 precompile, bytes calldata input, uint256 gas)
        public view returns (bool ok, bytes memory out)
    {
        (ok, out) = address(uint160(precompile)).staticcall{gas: gas}(input);
    }

    function record(uint256 precompile, bytes calldata input, uint256 gas) external returns (bool ok) {
        bytes memory out;
        (ok, out) = call(precompile, input, gas);
        lastHash = keccak256(out);
        calls += 1;
        emit Called(precompile, ok, out);
    }
}

/// A bank that pays before it books, and an attacker that re-enters it.
contract Bank {
    mapping(address => uint256) public balances;
    uint256 public paid;

    event Withdrawn(address indexed who, uint256 amount, uint256 paid);

    function deposit() external payable { balances[msg.sender] += msg.value; }

    function withdraw() external {
        uint256 amount = balances[msg.sender];
        paid += 1;
        (bool ok, ) = msg.sender.call{value: amount}("");
        require(ok, "pay failed");
        balances[msg.sender] = 0;
        emit Withdrawn(msg.sender, amount, paid);
    }
}

contract Attacker {
    Bank public immutable bank;
    uint256 public rounds;
    uint256 public maxRounds;

    constructor(Bank target) { bank = target; }

    function attack(uint256 extra) external payable {
        maxRounds = extra;
        bank.deposit{value: msg.value}();
        bank.withdraw();
    }

    receive() external payable {
        if (rounds < maxRounds) {
            rounds += 1;
            bank.withdraw();
        }
    }
}

/// Calls into itself: recursion through external self-calls, a caught inner revert whose
/// writes must vanish, a static call that tries to write, transient storage across frames.
contract SelfCaller {
    uint256 public total;
    uint256 public caught;
    bytes public lastReason;

    event Step(uint256 n);

    function recurse(uint256 n) public returns (uint256) {
        if (n == 0) return 0;
        total += n;
        emit Step(n);
        return n + this.recurse(n - 1);
    }

    function failInner(uint256 n) external {
        total = n;
        try this.writeThenRevert(n + 1) {
        } catch (bytes memory reason) {
            caught += 1;
            lastReason = reason;
        }
    }

    function writeThenRevert(uint256 v) external {
        total = v;
        emit Step(v);
        revert("inner");
    }

    function staticWrite() external returns (bool ok) {
        (ok, ) = address(this).staticcall(abi.encodeCall(this.setTotal, (7)));
        caught += ok ? 0 : 1;
    }

    function setTotal(uint256 v) external { total = v; }

    function transient(uint256 v) external returns (uint256 seen) {
        assembly { tstore(0, v) }
        seen = this.readTransient();
        total = seen;
    }

    function readTransient() external view returns (uint256 v) {
        assembly { v := tload(0) }
    }

    error Seen(uint256 balance);

    /// Reads a balance only inside a frame that reverts; the revert data carries it out.
    function peek(address who) external {
        try this.balanceAndRevert(who) {
        } catch (bytes memory reason) {
            lastReason = reason;
        }
    }

    function balanceAndRevert(address who) external view { revert Seen(who.balance); }

    function copy(bytes calldata data) external pure returns (bytes memory out) {
        out = new bytes(data.length);
        bytes memory from = data;
        assembly { mcopy(add(out, 32), add(from, 32), mload(from)) }
    }
}

/// Value in and out of contracts.
contract Sink {
    uint256 public received;
    uint256 public noted;

    event Received(address indexed from, uint256 value);

    receive() external payable {
        received += msg.value;
        emit Received(msg.sender, msg.value);
    }

    function forward(address payable to, uint256 amount) external {
        (bool ok, ) = to.call{value: amount}("");
        require(ok, "forward failed");
    }

    function note(address who) external { noted = who.balance; }

    function forwardAll(address payable to) external payable {
        to.transfer(address(this).balance);
    }
}

/// No receive and no fallback: value sent to it reverts.
contract Stubborn {
    uint256 public touched;

    function poke() external { touched += 1; }
}

/// A constructor that fails on request: revert with a reason or a custom error, code over
/// EIP-170's limit, code starting with 0xEF (EIP-3541), or success.
contract Fragile {
    error NotToday(uint256 code);

    uint256 public made;

    constructor(uint256 mode) payable {
        if (mode == 1) revert("constructor says no");
        if (mode == 2) revert NotToday(7);
        if (mode == 3) {
            assembly { return(0, 24577) }
        }
        if (mode == 4) {
            assembly {
                mstore8(0, 0xef)
                return(0, 1)
            }
        }
        made = mode;
    }
}
