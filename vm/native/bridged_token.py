"""The bridged token of a native app chain: the app the first deposit of an L1 token installs at
`rollup.deposits.bridged_token_address(l1_token)` (bridge/README.md).

It is app source like any other (it runs under the sandbox and the meter), with Solidity's
storage layout of the EVM chains' BridgedToken.sol, so the L1's escape hatch proves a balance
the same way on both VMs and the STF sets slots 3-5 at install:

    slot 0 balances, 1 allowances, 2 total supply, 3 l1 token, 4 decimals, 5 symbol (bytes32)
Minting is the bridge's (0x...0f0005) alone; `withdraw` burns and hands the amount to the L1.
"""

from __future__ import annotations

__all__ = ["BRIDGED_TOKEN_SOURCE", "BRIDGED_TOKEN_CLASS"]

BRIDGED_TOKEN_CLASS = "BridgedToken"

BRIDGED_TOKEN_SOURCE = r'''"""The canonical bridged token of an L1 ERC-20."""

from vm.native import (
    App,
    Error,
    Event,
    Map,
    Value,
    address,
    bytes32,
    indexed,
    method,
    uint8,
    uint256,
    view,
)

BRIDGE = b"\x00" * 17 + b"\x0f\x00\x05"
ZERO = b"\x00" * 20


class Transfer(Event):
    from_: indexed(address)
    to: indexed(address)
    value: uint256


class Approval(Event):
    owner: indexed(address)
    spender: indexed(address)
    value: uint256


class ERC20InsufficientBalance(Error):
    sender: address
    balance: uint256
    needed: uint256


class ERC20InsufficientAllowance(Error):
    spender: address
    allowance: uint256
    needed: uint256


class ERC20InvalidReceiver(Error):
    receiver: address


class NotTheBridge(Error):
    caller: address


class BridgedToken(App):
    balances = Map(address, uint256)
    allowances = Map((address, address), uint256)
    supply = Value(uint256)
    origin = Value(address)
    token_decimals = Value(uint8)
    token_symbol = Value(bytes32)

    @view
    def name(self) -> str:
        return "Bridged " + self.symbol()

    @view
    def symbol(self) -> str:
        return self.token_symbol.rstrip(b"\x00").decode("utf-8", "replace")

    @view
    def decimals(self) -> uint8:
        return self.token_decimals

    @view
    def totalSupply(self) -> uint256:
        return self.supply

    @view
    def l1Token(self) -> address:
        return self.origin

    @view
    def balanceOf(self, owner: address) -> uint256:
        return self.balances[owner]

    @view
    def allowance(self, owner: address, spender: address) -> uint256:
        return self.allowances[owner, spender]

    @method
    def transfer(self, to: address, value: uint256) -> bool:
        self._move(self.msg.sender, to, value)
        return True

    @method
    def approve(self, spender: address, value: uint256) -> bool:
        self.allowances[self.msg.sender, spender] = value
        self.emit(Approval(self.msg.sender, spender, value))
        return True

    @method
    def transferFrom(self, from_: address, to: address, value: uint256) -> bool:
        spender = self.msg.sender
        allowed = self.allowances[from_, spender]
        if allowed != 2**256 - 1:
            if allowed < value:
                raise ERC20InsufficientAllowance(spender, allowed, value)
            self.allowances[from_, spender] = allowed - value
        self._move(from_, to, value)
        return True

    @method
    def bridgeMint(self, to: address, amount: uint256) -> None:
        if self.msg.sender != BRIDGE:
            raise NotTheBridge(self.msg.sender)
        self.supply = self.supply + amount
        self.balances[to] = self.balances[to] + amount
        self.emit(Transfer(ZERO, to, amount))

    @method
    def withdraw(self, l1Recipient: address, amount: uint256) -> None:
        """Burn `amount` of the caller's tokens; they leave for `l1Recipient` on the L1."""
        holder = self.msg.sender
        balance = self.balances[holder]
        if balance < amount:
            raise ERC20InsufficientBalance(holder, balance, amount)
        self.balances[holder] = balance - amount
        self.supply = self.supply - amount
        self.emit(Transfer(holder, ZERO, amount))
        self.withdraw_token(holder, l1Recipient, amount)

    def _move(self, sender: bytes, to: bytes, value: int) -> None:
        if to == ZERO:
            raise ERC20InvalidReceiver(to)
        balance = self.balances[sender]
        if balance < value:
            raise ERC20InsufficientBalance(sender, balance, value)
        self.balances[sender] = balance - value
        self.balances[to] = self.balances[to] + value
        self.emit(Transfer(sender, to, value))
'''
