"""The called side of the bus benchmark and tests: answers pings, counts each one it executes."""

from vm.native import App, Map, Value, address, method, payable, revert, uint256, view


class Ponger(App):
    count = Value(uint256)
    executed = Map(uint256, uint256)  # k -> times pong(k) ran
    last_caller = Value(address)
    received = Value(uint256)  # value received with calls

    @method
    def pong(self, k: uint256) -> uint256:
        self.executed[k] = self.executed[k] + 1
        self.count = self.count + 1
        self.last_caller = self.msg.sender
        return k

    @payable
    def pong_value(self, k: uint256) -> uint256:
        self.received = self.received + self.msg.value
        return self.pong(k)

    @method
    def fail(self, k: uint256) -> uint256:
        self.count = self.count + 1  # rolled back with the revert
        revert(f"pong {k} refused")

    @method
    def burn(self) -> None:
        while True:
            self.count = self.count + 1

    @view
    def times(self, k: uint256) -> uint256:
        return self.executed[k]

    @view
    def total(self) -> uint256:
        return self.count

    @view
    def value_received(self) -> uint256:
        return self.received
