"""The target of `rollup bench abuse`: a view whose cost the caller chooses, and logs."""

from vm.native import App, Event, Map, Value, address, indexed, method, uint256, view


class Noted(Event):
    by: indexed(address)
    n: uint256


class Spinner(App):
    total = Value(uint256)
    seen = Map(address, uint256)

    @view
    def spin(self, n: uint256) -> uint256:
        """Loops `n` times, reading a storage slot each time: as heavy as the caller likes."""
        acc = 0
        i = 0
        while i < n:
            acc = acc + self.seen[self.msg.sender] + 1
            i = i + 1
        return acc

    @method
    def note(self, n: uint256) -> uint256:
        self.total = self.total + n
        self.seen[self.msg.sender] = n
        self.emit(Noted(self.msg.sender, n))
        return self.total
