"""The calling side of the bus benchmark and tests: sends numbered pings, counts the callbacks."""

from vm.native import (
    App,
    Map,
    Value,
    abi_decode,
    address,
    bytes32,
    callback,
    method,
    payable,
    uint64,
    uint256,
    view,
)


class Pinger(App):
    sent = Value(uint256)
    callbacks = Value(uint256)  # every callback run
    failures = Value(uint256)  # callbacks that reported a failed call
    answered = Map(uint256, uint256)  # k -> callbacks that returned k
    last_error = Value(bytes)

    @method
    def ping(self, chain: uint64, to: address, first: uint256, n: uint256) -> None:
        """Send pong(k) for k in first..first+n-1, each with a callback."""
        for k in range(first, first + n):
            self.send(chain, to, "pong(uint256)", k, callback=self.on_pong)
        self.sent = self.sent + n

    @method
    def ping_nocb(self, chain: uint64, to: address, first: uint256, n: uint256) -> None:
        """Like ping, without callbacks (no result messages come back)."""
        for k in range(first, first + n):
            self.send(chain, to, "pong(uint256)", k)
        self.sent = self.sent + n

    @method
    def call(self, chain: uint64, to: address, data: bytes, gas: uint64, ttl: uint64) -> bytes32:
        """Send raw calldata with a callback; returns the message id."""
        return self.send(chain, to, data, gas=gas, ttl=ttl, callback=self.on_pong)

    @payable
    def call_value(self, chain: uint64, to: address, data: bytes) -> bytes32:
        """Send raw calldata with this call's value attached and a callback."""
        return self.send(chain, to, data, value=self.msg.value, callback=self.on_pong)

    @callback
    def on_pong(self, msg_id: bytes32, ok: bool, data: bytes) -> None:
        self.callbacks = self.callbacks + 1
        if ok:
            if len(data) == 32:
                k = abi_decode("uint256", data)
                self.answered[k] = self.answered[k] + 1
        else:
            self.failures = self.failures + 1
            self.last_error = data

    @view
    def stats(self) -> tuple[uint256, uint256, uint256]:
        """(sent, callbacks, failures)."""
        return self.sent, self.callbacks, self.failures

    @view
    def answers(self, k: uint256) -> uint256:
        return self.answered[k]
