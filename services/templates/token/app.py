"""An ERC-20 token as a native app: wallets and web3 libraries use it like a Solidity ERC-20.

`send_to` moves tokens to an account inside another app (an exchange, say) over the cross-app
message bus: the tokens stay here, held by that app's remote account, and the app is told to
credit them with `receive_tokens(owner, value)`. The app pays them out again with a plain
`transfer` from its remote account. If it refuses them, or the message expires, the callback
gives them back.
"""

from vm.native import (
    App,
    Error,
    Event,
    Map,
    Value,
    address,
    bytes32,
    callback,
    indexed,
    method,
    remote_address,
    uint8,
    uint64,
    uint256,
    view,
)


class Transfer(Event):
    from_: indexed(address)
    to: indexed(address)
    value: uint256


class Approval(Event):
    owner: indexed(address)
    spender: indexed(address)
    value: uint256


class SentToApp(Event):
    msg_id: indexed(bytes32)  # the message id, as the callback will see it
    owner: indexed(address)
    chain: uint64
    app: address
    to: address
    value: uint256


class SendSettled(Event):
    msg_id: indexed(bytes32)
    delivered: bool  # false: the app refused the tokens and they went back to the owner


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
    pending_owner = Map(bytes32, address)  # sends to other apps whose result is due
    pending_value = Map(bytes32, uint256)
    pending_holder = Map(bytes32, address)

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

    @method
    def send_to(self, chain: uint64, app: address, to: address, value: uint256) -> bytes32:
        """Credit `value` of the caller's tokens to `to` inside app `app` on chain `chain`.
        Returns the message id; `SendSettled` reports the outcome once it is known."""
        owner = self.msg.sender
        holder = remote_address(chain, app)  # the account the app controls here
        self._move(owner, holder, value)
        msg_id = self.send(
            chain, app, "receive_tokens(address,uint256)", to, value, callback=self.on_sent
        )
        self.pending_owner[msg_id] = owner
        self.pending_value[msg_id] = value
        self.pending_holder[msg_id] = holder
        self.emit(SentToApp(msg_id, owner, chain, app, to, value))
        return msg_id

    @callback
    def on_sent(self, msg_id: bytes32, ok: bool, data: bytes) -> None:
        owner = self.pending_owner[msg_id]
        value = self.pending_value[msg_id]
        holder = self.pending_holder[msg_id]
        self.pending_owner[msg_id] = ZERO
        self.pending_value[msg_id] = 0
        self.pending_holder[msg_id] = ZERO
        if not ok:
            self._move(holder, owner, value)
        self.emit(SendSettled(msg_id, ok))

    def _move(self, sender: bytes, to: bytes, value: int) -> None:
        if to == ZERO:
            raise ERC20InvalidReceiver(to)
        balance = self.balances[sender]
        if balance < value:
            raise ERC20InsufficientBalance(sender, balance, value)
        self.balances[sender] = balance - value
        self.balances[to] += value
        self.emit(Transfer(sender, to, value))
