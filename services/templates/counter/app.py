"""The smallest native app: a counter anyone can bump. Start the tutorial here."""

from vm.native import App, Event, Value, address, indexed, method, uint256, view


class Incremented(Event):
    by: indexed(address)
    amount: uint256
    count: uint256


class Counter(App):
    count = Value(uint256)  # storage slot 0, like `uint256 public count;` in Solidity

    @method
    def increment(self) -> uint256:
        return self.add(1)

    @method
    def add(self, n: uint256) -> uint256:
        count = self.count + n
        self.count = count
        self.emit(Incremented(self.msg.sender, n, count))
        return count

    @view
    def get(self) -> uint256:
        return self.count
