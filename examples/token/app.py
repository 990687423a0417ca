"""An ERC-20 token as a native app: wallets and web3 libraries use it like a Solidity ERC-20."""

from vm.native import App, Error, Event, Map, Value, address, indexed, method, uint8, uint256, view


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


ZERO = bytes(20)


class Token(App):
    token_name = Value(str)
    token_symbol = Value(str)
    supply = Value(uint256)
    balances = Map(address, uint256)
    allowances = Map((address, address), uint256)

    def init(self, name: str = "Example Token", symbol: str = "EXT", supply: int = 10**24) -> None:
        self.token_name = name
        self.token_symbol = symbol
        self.supply = supply
        self.balances[self.msg.sender] = supply
        self.emit(Transfer(ZERO, self.msg.sender, supply))

    @view
    def name(self) -> str:
        return self.token_name

    @view
    def symbol(self) -> str:
        return self.token_symbol

    @view
    def decimals(self) -> uint8:
        return 18

    @view
    def totalSupply(self) -> uint256:
        return self.supply

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

    def _move(self, sender: bytes, to: bytes, value: int) -> None:
        if to == ZERO:
            raise ERC20InvalidReceiver(to)
        balance = self.balances[sender]
        if balance < value:
            raise ERC20InsufficientBalance(sender, balance, value)
        self.balances[sender] = balance - value
        self.balances[to] += value
        self.emit(Transfer(sender, to, value))
