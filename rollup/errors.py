"""The one exception tree of the project, and the table that maps it to JSON-RPC and HTTP.

    RollupError
    ├── ParseError              -32700  the request body is not JSON
    ├── InvalidRequest          -32600  JSON, but not a JSON-RPC request (or too large)
    ├── MethodNotFound          -32601
    ├── InvalidParams           -32602  wrong arity, type, or value of a parameter
    ├── TxRejected              -32000  admission refused a transaction (geth's messages)
    │   └── TxDecodeError, InvalidSender, NonceTooLow, NonceTooHigh, InsufficientFunds,
    │       IntrinsicGasTooLow, FeeCapTooLow, TipAboveFeeCap, GasLimitExceeded,
    │       AlreadyKnown, ReplacementUnderpriced, OversizedData, NotReplayProtected,
    │       TxPoolFull, UnsupportedTransaction, InitcodeTooLarge, SenderNotEOA,
    │       TxDropped (the pool let go of one it had accepted: outbid, expired)
    ├── StateUnavailable        -32000  historical state outside the kept window
    ├── BlockNotFound           -32000  "header not found"
    ├── ExecutionReverted            3  eth_call / eth_estimateGas reverted; carries ABI data
    ├── CallFailed              -32000  a call failed without revert data (out of gas, ...)
    ├── LimitExceeded           -32005  a bound of the node was hit (range, batch, rate)
    ├── MalformedMessage        -32602  a cross-app message or bus frame that does not decode
    └── InternalError           -32603
A transaction that fails while executing is recorded in its receipt, never raised.
"""

from __future__ import annotations

__all__ = [
    "RollupError",
    "ParseError",
    "InvalidRequest",
    "MethodNotFound",
    "InvalidParams",
    "TxRejected",
    "TxDecodeError",
    "InvalidSender",
    "NonceTooLow",
    "NonceTooHigh",
    "InsufficientFunds",
    "IntrinsicGasTooLow",
    "FeeCapTooLow",
    "TipAboveFeeCap",
    "GasLimitExceeded",
    "AlreadyKnown",
    "ReplacementUnderpriced",
    "OversizedData",
    "NotReplayProtected",
    "TxPoolFull",
    "TxDropped",
    "UnsupportedTransaction",
    "StateUnavailable",
    "BlockNotFound",
    "ExecutionReverted",
    "CallFailed",
    "LimitExceeded",
    "InternalError",
    "AppLoadError",
    "ManifestError",
    "InvalidBlock",
    "MalformedMessage",
    "ERROR_TABLE",
    "rpc_code",
    "http_status",
]


class RollupError(Exception):
    """Root of every error the project raises on purpose."""

    message: str

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ParseError(RollupError):
    pass


class InvalidRequest(RollupError):
    pass


class MethodNotFound(RollupError):
    def __init__(self, method: str) -> None:
        super().__init__(f"the method {method} does not exist/is not available")
        self.method = method


class InvalidParams(RollupError):
    pass


class TxRejected(RollupError):
    """Admission refused a transaction; nothing changed."""


class TxDecodeError(TxRejected):
    pass


class InvalidSender(TxRejected):
    pass


class NonceTooLow(TxRejected):
    def __init__(self, sender: str, tx_nonce: int, state_nonce: int) -> None:
        super().__init__(f"nonce too low: address {sender}, tx: {tx_nonce} state: {state_nonce}")
        self.tx_nonce, self.state_nonce = tx_nonce, state_nonce


class NonceTooHigh(TxRejected):
    def __init__(self, sender: str, tx_nonce: int, state_nonce: int) -> None:
        super().__init__(f"nonce too high: address {sender}, tx: {tx_nonce} state: {state_nonce}")
        self.tx_nonce, self.state_nonce = tx_nonce, state_nonce


class InsufficientFunds(TxRejected):
    def __init__(self, balance: int, cost: int) -> None:
        super().__init__(
            "insufficient funds for gas * price + value: "
            f"balance {balance}, tx cost {cost}, overshot {cost - balance}"
        )
        self.balance, self.cost = balance, cost


class IntrinsicGasTooLow(TxRejected):
    def __init__(self, gas: int, needed: int) -> None:
        super().__init__(f"intrinsic gas too low: gas {gas}, minimum needed {needed}")


class FeeCapTooLow(TxRejected):
    def __init__(self, sender: str, fee_cap: int, base_fee: int) -> None:
        super().__init__(
            "max fee per gas less than block base fee: "
            f"address {sender}, maxFeePerGas: {fee_cap}, baseFee: {base_fee}"
        )


class TipAboveFeeCap(TxRejected):
    def __init__(self, sender: str, tip: int, fee_cap: int) -> None:
        super().__init__(
            "max priority fee per gas higher than max fee per gas: "
            f"address {sender}, maxPriorityFeePerGas: {tip}, maxFeePerGas: {fee_cap}"
        )


class GasLimitExceeded(TxRejected):
    def __init__(self) -> None:
        super().__init__("exceeds block gas limit")


class AlreadyKnown(TxRejected):
    def __init__(self) -> None:
        super().__init__("already known")


class ReplacementUnderpriced(TxRejected):
    def __init__(self) -> None:
        super().__init__("replacement transaction underpriced")


class OversizedData(TxRejected):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"oversized data: transaction size {size}, limit {limit}")


class InitcodeTooLarge(TxRejected):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"max initcode size exceeded: code size {size} limit {limit}")


class SenderNotEOA(TxRejected):
    def __init__(self, sender: str, code_size: int) -> None:
        super().__init__(f"sender not an eoa: address {sender}, len(code): {code_size}")


class NotReplayProtected(TxRejected):
    def __init__(self) -> None:
        super().__init__("only replay-protected (EIP-155) transactions allowed over RPC")


class TxPoolFull(TxRejected):
    def __init__(self) -> None:
        super().__init__("txpool is full")


class TxDropped(TxRejected):
    """The pool let go of a transaction it had accepted: a higher-priced one took its slot in a
    full pool, or it waited queued (behind a nonce gap) longer than the pool's lifetime."""


class UnsupportedTransaction(TxRejected):
    pass


class StateUnavailable(RollupError):
    pass


class BlockNotFound(RollupError):
    """A block tag or hash names no block (geth: -32000 "header not found")."""


class ExecutionReverted(RollupError):
    """A call reverted; `data` is the ABI revert payload (Error(string), Panic, custom)."""

    def __init__(self, reason: str | None, data: bytes) -> None:
        super().__init__("execution reverted" + (f": {reason}" if reason else ""))
        self.reason, self.data = reason, data


class CallFailed(RollupError):
    """eth_call / eth_estimateGas failed without revert data (out of gas, invalid opcode)."""


class LimitExceeded(RollupError):
    pass


class InternalError(RollupError):
    pass


class AppLoadError(RollupError):
    """App code was rejected by the loader or failed to build."""


class ManifestError(RollupError):
    """A `rollup.toml` is malformed; the message names the field."""


class InvalidBlock(RollupError):
    """A block does not match what re-execution produced."""


class MalformedMessage(RollupError):
    """A cross-app message or bus frame that does not decode, or breaks a protocol limit."""


# class -> (JSON-RPC code, HTTP status). The most specific class wins (looked up by MRO).
ERROR_TABLE: dict[type[RollupError], tuple[int, int]] = {
    ParseError: (-32700, 400),
    InvalidRequest: (-32600, 400),
    MethodNotFound: (-32601, 404),
    InvalidParams: (-32602, 422),
    TxRejected: (-32000, 422),
    StateUnavailable: (-32000, 404),
    BlockNotFound: (-32000, 404),
    ExecutionReverted: (3, 422),
    CallFailed: (-32000, 422),
    LimitExceeded: (-32005, 429),
    InternalError: (-32603, 500),
    AppLoadError: (-32000, 422),
    ManifestError: (-32000, 422),
    InvalidBlock: (-32000, 409),
    MalformedMessage: (-32602, 422),
    RollupError: (-32603, 500),
}


def _lookup(error: BaseException) -> tuple[int, int]:
    for cls in type(error).__mro__:
        entry = ERROR_TABLE.get(cls)
        if entry is not None:
            return entry
    return (-32603, 500)


def rpc_code(error: BaseException) -> int:
    return _lookup(error)[0]


def http_status(error: BaseException) -> int:
    return _lookup(error)[1]
