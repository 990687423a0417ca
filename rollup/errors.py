"""The one exception tree of the project, and the table that maps it to JSON-RPC and HTTP.

Every exception the project raises derives from `RollupError`, and every class says what its
caller must do in its `action` (as op-node classes its errors temporary / reset / critical):

    RETRY      the same call may succeed later, unchanged (the L1 is down, the pool is full)
    FIX_INPUT  the input is wrong: the same call fails again until the caller changes it
    STOP       the process cannot go on safely (a divergence, corrupt data, a bug): report it
               and stop, or wait for an operator
A class inherits its base's action and overrides it where it differs (`TxPoolFull` is a
`TxRejected` the caller may simply retry). The action is an attribute, not a second base
class: families are grouped by what they are (`TxRejected`, `DAError`, `L1Error`) and their
members differ in what to do, so one `isinstance` must not answer two ways. `action_of(exc)`
reads it for any exception (STOP for one that is not ours: a bug). No caller decides by
comparing message text: a case it must tell apart is a class.

    RollupError                               action  JSON-RPC  HTTP
    ├── ParseError                            input   -32700    400  the body is not JSON
    ├── InvalidRequest                        input   -32600    400  not a JSON-RPC request
    ├── MethodNotFound                        input   -32601    404
    ├── InvalidParams                         input   -32602    422  arity, type or value
    ├── TxRejected                            input   -32000    422  admission refused it
    │   ├── TxDecodeError, InvalidSender, NonceTooLow, NonceTooHigh, InsufficientFunds,
    │   │   IntrinsicGasTooLow, FeeCapTooLow, TipAboveFeeCap, GasLimitExceeded, AlreadyKnown,
    │   │   ReplacementUnderpriced, OversizedData, NotReplayProtected, UnsupportedTransaction,
    │   │   InitcodeTooLarge, SenderNotEOA, TxGasLimitTooHigh   (geth's messages)
    │   ├── TxPoolFull, TxDropped             retry            the pool is full / let it go
    │   └── SequencerPaused                   retry   -32002    503  an operator paused it
    ├── StateUnavailable                      input   -32000    404  outside the kept window
    ├── ResourceNotFound                      input   -32001    404  nothing of that kind here
    ├── BlockNotFound                         input   -32000    404  "header not found"
    ├── ExecutionReverted                     input        3    422  carries the revert data
    ├── CallFailed                            input   -32000    422  no revert data (out of gas)
    ├── LimitExceeded                         input   -32005    429  a bound on one request
    │   └── Busy                              retry                  the node is at capacity
    ├── MalformedMessage                      input   -32602    422  a message or bus frame
    │   └── FrameRejected                                            services/bus/wire.py
    ├── DecodeError                           input                  bytes that do not decode
    │   ├── RLPError                                                 rollup/rlp.py
    │   └── AbiError                                                 vm/native/abi.py
    ├── ConfigError                           input                  a setting, flag or file
    │   ├── ManifestError                             -32000    422  rollup.toml
    │   ├── BusConfigError                                           services/bus/transport.py
    │   └── KeyFileError                                             services/keys.py
    ├── AppLoadError                          input   -32000    422  app code refused or broken
    │   └── SandboxViolation                                         vm/native/sandbox.py
    ├── SolcError                             input                  bridge/solc.py
    ├── ExecutionError                        input                  inside a VM call: recorded
    │   ├── Revert (Panic, and the apps' Error)                      vm/native/sdk.py
    │   ├── WriteInView, NoTextForm                                  vm/native/gas.py
    │   ├── SendError                                                vm/bus.py
    │   └── WithdrawError                                            vm/bridge.py
    ├── InvalidTransaction                    input                  vm/stf.py: not includable
    │   ├── BlockFull                         retry                  the block's gas is used up
    │   └── InvalidBlockTransaction           stop                   in a block being replayed
    ├── InvalidBlock                          stop    -32000    409  re-execution disagrees
    │   ├── InvalidDeposits                                          vm/bridge.py
    │   └── InvalidInbound                                           vm/bus.py
    ├── DAError                               stop                   da/errors.py has its tree
    │   ├── CodecError                        input                  drop the data
    │   │   └── BatchError, CompressionError (DecompressionLimit), FrameError, BlobError
    │   ├── TemporaryDAError                  retry                  SourceNotPosted, L1NotReady
    │   └── DataNotFound, CorruptData, Divergence (da/derive.py), ForeignBatch (da/poster.py)
    ├── L1Error                               stop                   bridge/l1.py
    │   ├── L1Unavailable                     retry
    │   ├── L1Rejected                        input
    │   └── L1BadData                         stop                   a lying RPC
    ├── ProcessError                          stop                   a process we start failed
    │   └── NodeStartError, AnvilError, NatsServerError, DevnetError, BenchError
    ├── ForwardedError                        input   (its own)      services/rpc/isolation.py
    ├── RpcUnavailable (retry), RpcCallError (input)                 services/rpcclient.py
    ├── WaitTimeout                           retry                  services/waiting.py
    ├── SchemaError                           stop                   storage/migrate.py
    ├── Unauthorized                          input   -32000    401  node admin methods
    ├── NoUnlockedAccounts                    input   -32004    405  no dev accounts here
    ├── UnknownAccount                        input   -32000    422  not a key the node holds
    ├── AdminError                            input                  services/admin/errors.py
    │   └── NotAuthenticated (401), Forbidden (403), NotFound (404), BadRequest (400),
    │       Conflict (409: PoolTooLarge), Unprocessable (422),
    │       NodeUnavailable (retry, 503: TooManyStreams)
    ├── StalledClient                         retry                  services/admin/stream.py
    ├── UsageError (input), Failure (stop)                           services/cli.py
    ├── VerifyError (stop)                                           services/da_cli.py
    ├── BridgeError (stop), AppRpcError                              services/bridge_cli.py
    └── InternalError                         stop    -32603    500
A class without a code of its own answers with its nearest base's (ERROR_TABLE, looked up by
MRO), so the ones outside the RPC's reach answer -32603 / 500 should they ever get there. A
transaction that fails while executing is recorded in its receipt, never raised. Not errors,
and so outside the tree: `vm.native.gas.Halt` (a BaseException, so that app code cannot catch
the meter stopping it) and the private signals that never leave the module raising them
(`NeedsIsolation`, the native loader's `_Unknown`, the RPC server's `_Deferred`, `_Grouped`).
"""

from __future__ import annotations

import enum
from typing import ClassVar

__all__ = [
    "Action",
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
    "TxGasLimitTooHigh",
    "AlreadyKnown",
    "ReplacementUnderpriced",
    "OversizedData",
    "NotReplayProtected",
    "TxPoolFull",
    "TxDropped",
    "SequencerPaused",
    "Unauthorized",
    "NoUnlockedAccounts",
    "ResourceNotFound",
    "UnknownAccount",
    "UnsupportedTransaction",
    "InitcodeTooLarge",
    "SenderNotEOA",
    "StateUnavailable",
    "BlockNotFound",
    "ExecutionReverted",
    "CallFailed",
    "LimitExceeded",
    "Busy",
    "InternalError",
    "MalformedMessage",
    "DecodeError",
    "ConfigError",
    "ManifestError",
    "AppLoadError",
    "ExecutionError",
    "InvalidBlock",
    "ProcessError",
    "ERROR_TABLE",
    "action_of",
    "rpc_code",
    "http_status",
]


class Action(enum.Enum):
    """What the caller of a failed operation must do."""

    RETRY = "retry"
    FIX_INPUT = "fix input"
    STOP = "stop"


class RollupError(Exception):
    """Root of every error the project raises on purpose. Unless a class says otherwise its
    caller must stop: a failure nobody classified is not one to retry or to blame on input."""

    action: ClassVar[Action] = Action.STOP
    message: str

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ParseError(RollupError):
    action = Action.FIX_INPUT


class InvalidRequest(RollupError):
    action = Action.FIX_INPUT


class MethodNotFound(RollupError):
    action = Action.FIX_INPUT

    def __init__(self, method: str) -> None:
        super().__init__(f"the method {method} does not exist/is not available")
        self.method = method


class InvalidParams(RollupError):
    action = Action.FIX_INPUT


class TxRejected(RollupError):
    """Admission refused a transaction; nothing changed."""

    action = Action.FIX_INPUT


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


class TxGasLimitTooHigh(TxRejected):
    """EIP-7825's cap on one transaction's gas (geth's words)."""

    def __init__(self, cap: int, gas: int) -> None:
        super().__init__(f"transaction gas limit too high (cap: {cap}, tx: {gas})")


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
    action = Action.RETRY

    def __init__(self) -> None:
        super().__init__("txpool is full")


class TxDropped(TxRejected):
    """The pool let go of a transaction it had accepted: a higher-priced one took its slot in a
    full pool, or it waited queued (behind a nonce gap) longer than the pool's lifetime."""

    action = Action.RETRY


class SequencerPaused(TxRejected):
    """An operator paused the sequencer (services/rpc/admin.py): it keeps its pool and builds
    no blocks until resumed, so the same transaction may be sent again later."""

    action = Action.RETRY

    def __init__(self) -> None:
        super().__init__(
            "sequencer paused: this node accepts no new transactions until an operator "
            "resumes it; retry later"
        )


class UnsupportedTransaction(TxRejected):
    pass


class StateUnavailable(RollupError):
    """Historical state (or a proof) this node does not keep: ask an archive, or a newer block."""

    action = Action.FIX_INPUT


class BlockNotFound(RollupError):
    """A block tag or hash names no block (geth: -32000 "header not found")."""

    action = Action.FIX_INPUT


class ExecutionReverted(RollupError):
    """A call reverted; `data` is the ABI revert payload (Error(string), Panic, custom)."""

    action = Action.FIX_INPUT

    def __init__(self, reason: str | None, data: bytes) -> None:
        super().__init__("execution reverted" + (f": {reason}" if reason else ""))
        self.reason, self.data = reason, data


class CallFailed(RollupError):
    """eth_call / eth_estimateGas failed without revert data (out of gas, invalid opcode)."""

    action = Action.FIX_INPUT


class LimitExceeded(RollupError):
    """A bound on one request was hit (a block range, results, a batch, filters): ask for less."""

    action = Action.FIX_INPUT


class Busy(LimitExceeded):
    """The node is at capacity now (heavy requests in flight, the DA backlog): retry later."""

    action = Action.RETRY


class Unauthorized(RollupError):
    """A node admin method called without the node's admin token, or with another."""

    action = Action.FIX_INPUT


class ResourceNotFound(RollupError):
    """What is asked for does not exist on this chain (EIP-1474 -32001), e.g. a block access
    list of a block before the fork that introduced them."""

    action = Action.FIX_INPUT


class NoUnlockedAccounts(RollupError):
    """A signing method on a node that holds no keys (dev accounts disabled: production)."""

    action = Action.FIX_INPUT

    def __init__(self) -> None:
        super().__init__("method not available: no unlocked accounts")


class UnknownAccount(RollupError):
    """A signing method for an address whose key the node does not hold (geth's words)."""

    action = Action.FIX_INPUT

    def __init__(self, address: bytes) -> None:
        super().__init__(f"unknown account 0x{address.hex()}")


class InternalError(RollupError):
    """A bug or a broken invariant of this node."""


class MalformedMessage(RollupError):
    """A cross-app message or bus frame that does not decode, or breaks a protocol limit."""

    action = Action.FIX_INPUT


class DecodeError(RollupError):
    """Bytes that do not decode (RLP, ABI); the same bytes never will."""

    action = Action.FIX_INPUT


class ConfigError(RollupError):
    """A setting this process cannot use: a flag, an environment variable, `rollup.toml`, a
    key or trust file. The message names the setting and fits on one line."""

    action = Action.FIX_INPUT


class ManifestError(ConfigError):
    """A `rollup.toml` is malformed; the message names the field."""


class AppLoadError(RollupError):
    """App code was rejected by the loader or failed to build."""

    action = Action.FIX_INPUT


class ExecutionError(RollupError):
    """Raised inside a VM call (by app code, the SDK, the STF's bus or bridge): the VM records
    the call as failed in its receipt and never raises it further."""

    action = Action.FIX_INPUT


class InvalidBlock(RollupError):
    """A block does not match what re-execution produced."""


class ProcessError(RollupError):
    """A process this one starts or drives (a node, Anvil, nats-server, a verifier, a devnet)
    would not start, died, or is in no state to do what was asked."""


# class -> (JSON-RPC code, HTTP status). The most specific class wins (looked up by MRO).
ERROR_TABLE: dict[type[RollupError], tuple[int, int]] = {
    ParseError: (-32700, 400),
    InvalidRequest: (-32600, 400),
    MethodNotFound: (-32601, 404),
    InvalidParams: (-32602, 422),
    TxRejected: (-32000, 422),
    SequencerPaused: (-32002, 503),  # EIP-1474 "resource unavailable"
    Unauthorized: (-32000, 401),
    NoUnlockedAccounts: (-32004, 405),  # EIP-1474 "method not supported"; viem: unsupported
    UnknownAccount: (-32000, 422),
    StateUnavailable: (-32000, 404),
    ResourceNotFound: (-32001, 404),  # EIP-1474 "resource not found"
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


def action_of(error: BaseException) -> Action:
    """What the caller must do about `error`: STOP for an exception that is not ours."""
    return error.action if isinstance(error, RollupError) else Action.STOP


def rpc_code(error: BaseException) -> int:
    return _lookup(error)[0]


def http_status(error: BaseException) -> int:
    return _lookup(error)[1]
