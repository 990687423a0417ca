"""`Portal`: the client of bridge/contracts/Portal.sol, the L1 end of every app chain's bridge.

    owner        register_chain
    deposits     deposit_eth, deposit_erc20 (after approve_token): each returns the Deposit its
                 TransactionDeposited event determines (rollup/deposits.py)
    withdrawals  prove_withdrawal, finalize_withdrawal (rollup/withdrawals.py's Withdrawal)
    exits        escape (the hatch, with state proofs), reclaim_deposit (a deposit the exit
                 root did not execute, back to its L1 depositor), settle (bus value between
                 chains)
    views        chain, eth_balance, token_balance, proven, is_finalized, exit_mode,
                 escape_hatch_open, deposit_record, is_reclaimed, ...
The node's L1 follower reads deposits through the `DepositReader` port: `PortalDeposits`
implements it over eth_getLogs (one query per chain and range, ordered by L1 block and log
index, each event checked to come from the Portal and decoded by `deposit_from_event`); a fake
replaces it in tests. A log that does not decode, or breaks a rule the Portal enforces, raises
`L1Rejected` naming its L1 block and transaction: it is never skipped.
The ABI is kept beside the source (Portal.abi.json, checked against a fresh compile by
tests/bridge/test_portal.py); `deploy_portal` compiles.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from web3 import Web3
from web3.exceptions import Web3Exception

from bridge.build import CONTRACTS_DIR, ContractClient, compile_contract
from bridge.l1 import L1Client, L1Rejected, _mapped_errors
from rollup.crypto import keccak
from rollup.deposits import Deposit, deposit_from_event, unalias_l2_address
from rollup.errors import MalformedMessage
from rollup.outputs import OUTPUT_VERSION
from rollup.withdrawals import Withdrawal

__all__ = [
    "DEPOSITED_TOPIC",
    "DEFAULT_DEPOSIT_GAS",
    "ChainConfig",
    "DepositReader",
    "DepositRecord",
    "FinalizedWithdrawal",
    "KeyProof",
    "OutputRootProof",
    "Portal",
    "PortalDeposits",
    "SentDeposit",
    "TokenClaim",
    "deploy_portal",
]

SOURCE = CONTRACTS_DIR / "Portal.sol"
DEPOSITED_TOPIC = keccak(b"TransactionDeposited(uint64,uint64,address,bytes)")
DEFAULT_DEPOSIT_GAS = 100_000  # L2 gas of a deposit without data: a transfer and a token mint
LOG_CHUNK = 10_000  # L1 blocks per eth_getLogs query


@dataclass(frozen=True, slots=True)
class OutputRootProof:
    """The preimage of an output root: keccak(version 0 ++ these three)."""

    state_root: bytes
    withdrawals_root: bytes
    block_hash: bytes

    @property
    def root(self) -> bytes:
        return keccak(OUTPUT_VERSION + self.state_root + self.withdrawals_root + self.block_hash)

    def as_abi(self) -> tuple[bytes, bytes, bytes]:
        return (self.state_root, self.withdrawals_root, self.block_hash)


@dataclass(frozen=True, slots=True)
class TokenClaim:
    """An escape's claim of a bridged-token balance, proven in the token's storage."""

    l1_token: bytes
    value: bytes  # the balance as the state holds it (minimal big-endian)
    siblings: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class KeyProof:
    """A state key's value under a state root, or (`value` empty) its absence: the walk ends
    on an empty subtree, or on another key's leaf (`other_key_hash`, `other_value`). The
    fields of vm/commitment.py's Proof, as the Portal takes them."""

    value: bytes
    siblings: tuple[bytes, ...]
    other_key_hash: bytes = bytes(32)  # 32 zero bytes: the walk ended on an empty subtree
    other_value: bytes = b""

    def as_abi(self) -> tuple[bytes, list[bytes], bytes, bytes]:
        return (self.value, list(self.siblings), self.other_key_hash, self.other_value)


@dataclass(frozen=True, slots=True)
class DepositRecord:
    """What a deposit escrowed and its L1 caller (never aliased): the Portal keeps its hash
    per (chain, nonce), and `reclaim_deposit` pays it back to `sender`."""

    sender: bytes
    eth_amount: int
    l1_token: bytes  # 20 zero bytes: an ETH deposit
    token_amount: int

    def as_abi(self) -> tuple[str, int, str, int]:
        return (_address(self.sender), self.eth_amount, _address(self.l1_token), self.token_amount)

    @property
    def hash(self) -> bytes:
        """keccak256(abi.encode(sender, ethAmount, l1Token, tokenAmount)), as the Portal."""
        types = ["address", "uint256", "address", "uint256"]
        return keccak(Web3().codec.encode(types, list(self.as_abi())))


@dataclass(frozen=True, slots=True)
class ChainConfig:
    registered: bool
    withdrawal_delay: int
    escape_window: int
    deposit_count: int


@dataclass(frozen=True, slots=True)
class SentDeposit:
    l1_tx: bytes
    deposit: Deposit  # with its L1 block; deposit.source_hash is the deposit id


@dataclass(frozen=True, slots=True)
class FinalizedWithdrawal:
    l1_tx: bytes
    success: bool  # did the call to the target succeed (a failure is final)


class DepositReader(Protocol):
    """The deposits of one app chain as the L1 has them: what the node's L1 follower reads.
    Raises ConnectionError (or a subclass) while the L1 cannot be reached."""

    def deposits(
        self, chain_id: int, from_l1_block: int, to_l1_block: int | None = None
    ) -> list[Deposit]:
        """The chain's deposits in L1 blocks of the range (inclusive), in L1 log order."""
        ...

    def l1_block_number(self, tag: str = "latest") -> int:
        """The L1's block number at `tag` ("latest", "safe" or "finalized")."""
        ...

    def l1_block_hash(self, number: int) -> bytes | None:
        """The hash of L1 block `number`, None if the L1 has no such block (yet)."""
        ...


class PortalDeposits:
    """`DepositReader` over eth_getLogs of the Portal at `address`."""

    def __init__(self, l1: L1Client, address: bytes) -> None:
        self.l1 = l1
        self.address = address
        self._event = ContractClient(l1, address, "Portal").contract.events.TransactionDeposited()

    def deposits(
        self, chain_id: int, from_l1_block: int, to_l1_block: int | None = None
    ) -> list[Deposit]:
        end = self.l1.block_number() if to_l1_block is None else to_l1_block
        topics = [DEPOSITED_TOPIC, chain_id.to_bytes(32, "big")]
        logs: list[Any] = []
        for start in range(from_l1_block, end + 1, LOG_CHUNK):
            logs += self.l1.logs(self.address, topics, start, min(start + LOG_CHUNK - 1, end))
        logs.sort(key=lambda log: (int(log["blockNumber"]), int(log["logIndex"])))
        return [self.decode(log) for log in logs]

    def l1_block_number(self, tag: str = "latest") -> int:
        return self.l1.block_number(tag)

    def l1_block_hash(self, number: int) -> bytes | None:
        with _mapped_errors(f"block {number}"):
            try:
                block = self.l1.w3.eth.get_block(number)
            except Web3Exception:  # BlockNotFound: not there (yet)
                return None
        return bytes(block["hash"]) if block and block.get("hash") else None

    def decode(self, log: Any) -> Deposit:
        """The deposit of one TransactionDeposited log of this Portal; L1Rejected otherwise."""
        where = f"L1 block {log.get('blockNumber')}, tx {_hex(log.get('transactionHash'))}"
        try:
            if bytes.fromhex(Web3.to_checksum_address(log["address"])[2:]) != self.address:
                raise ValueError("not from the Portal")
            args = self._event.process_log(log)["args"]
            return deposit_from_event(
                int(args["chainId"]),
                int(args["nonce"]),
                bytes.fromhex(args["from"][2:]),
                bytes(args["opaqueData"]),
                bytes(log["blockHash"]),
                int(log["logIndex"]),
                int(log["blockNumber"]),
            )
        except (Web3Exception, MalformedMessage, KeyError, TypeError, ValueError) as exc:
            raise L1Rejected(f"malformed TransactionDeposited log ({where}): {exc}") from None


class Portal:
    def __init__(self, l1: L1Client, address: bytes) -> None:
        self.l1 = l1
        self.address = address
        self._client = ContractClient(l1, address, "Portal")
        self.reader = PortalDeposits(l1, address)

    # ---- owner ----

    def register_chain(self, chain_id: int, withdrawal_delay: int, escape_window: int) -> None:
        self._client.send("registerChain", chain_id, withdrawal_delay, escape_window)

    # ---- deposits ----

    def deposit_eth(
        self,
        chain_id: int,
        to: bytes,
        value: int,
        gas_limit: int = DEFAULT_DEPOSIT_GAS,
        data: bytes = b"",
    ) -> SentDeposit:
        """Mint `value` to this key's account on the chain and call `to` with it there."""
        receipt = self._client.send(
            "depositETH", chain_id, _address(to), gas_limit, data, value=value
        )
        return self._sent(receipt.tx_hash, receipt.logs)

    def approve_token(self, l1_token: bytes, amount: int) -> None:
        """Let the Portal pull `amount` of `l1_token` from this key (ERC-20 `approve`)."""
        call = keccak(b"approve(address,uint256)")[:4] + Web3().codec.encode(
            ["address", "uint256"], [_address(self.address), amount]
        )
        self.l1.send(l1_token, call)

    def deposit_erc20(
        self,
        chain_id: int,
        l1_token: bytes,
        to: bytes,
        amount: int,
        gas_limit: int = DEFAULT_DEPOSIT_GAS,
        data: bytes = b"",
    ) -> SentDeposit:
        """Escrow `amount` of `l1_token` (approved first) and credit what arrived to `to`."""
        receipt = self._client.send(
            "depositERC20", chain_id, _address(l1_token), _address(to), amount, gas_limit, data
        )
        return self._sent(receipt.tx_hash, receipt.logs)

    def _sent(self, tx_hash: bytes, logs: Sequence[Any]) -> SentDeposit:
        found = [self.reader.decode(log) for log in logs if _topic(log) == DEPOSITED_TOPIC]
        if len(found) != 1:
            raise L1Rejected(f"deposit 0x{tx_hash.hex()} emitted {len(found)} events")
        return SentDeposit(tx_hash, found[0])

    # ---- withdrawals ----

    def prove_withdrawal(
        self,
        w: Withdrawal,
        batch_index: int,
        proof: OutputRootProof,
        count: int,
        siblings: Sequence[bytes],
    ) -> bytes:
        """Prove `w` against batch `batch_index`'s output; the L1 transaction hash."""
        receipt = self._client.send(
            "proveWithdrawal", _withdrawal(w), batch_index, proof.as_abi(), count, list(siblings)
        )
        return receipt.tx_hash

    def finalize_calldata(self, w: Withdrawal) -> bytes:
        """The calldata of `finalizeWithdrawal(w)`, for a transaction sent by other means."""
        return self._client.encode("finalizeWithdrawal", _withdrawal(w))

    def finalize_withdrawal(self, w: Withdrawal) -> FinalizedWithdrawal:
        receipt = self._client.send("finalizeWithdrawal", _withdrawal(w))
        event = self._client.contract.events.WithdrawalFinalized()
        for log in receipt.logs:
            if _topic(log) == _WITHDRAWAL_FINALIZED_TOPIC:
                return FinalizedWithdrawal(
                    receipt.tx_hash, bool(event.process_log(log)["args"]["success"])
                )
        raise L1Rejected(f"finalizeWithdrawal 0x{receipt.tx_hash.hex()} emitted no event")

    # ---- exits ----

    def escape(
        self,
        chain_id: int,
        proof: OutputRootProof,
        account: bytes,
        account_value: bytes = b"",
        account_siblings: Sequence[bytes] = (),
        tokens: Sequence[TokenClaim] = (),
    ) -> bytes:
        """Pay `account` its ETH (when `account_value` is given) and the claimed tokens as the
        chain's exit root has them; the L1 transaction hash."""
        claims = [(_address(t.l1_token), t.value, list(t.siblings)) for t in tokens]
        receipt = self._client.send(
            "escape",
            chain_id,
            proof.as_abi(),
            _address(account),
            account_value,
            list(account_siblings),
            claims,
        )
        return receipt.tx_hash

    def reclaim_deposit(
        self,
        chain_id: int,
        nonce: int,
        proof: OutputRootProof,
        next_nonce: KeyProof,
        record: DepositRecord,
    ) -> bytes:
        """Pay deposit `nonce` back to its L1 depositor: the exit root (`proof`) did not
        execute it, as `next_nonce` (the chain's state key 0x0d) proves; the L1 transaction
        hash."""
        receipt = self._client.send(
            "reclaimDeposit",
            chain_id,
            nonce,
            proof.as_abi(),
            next_nonce.as_abi(),
            record.as_abi(),
        )
        return receipt.tx_hash

    def settle(
        self,
        src: int,
        dst: int,
        batch_index: int,
        proof: OutputRootProof,
        value: bytes,
        siblings: Sequence[bytes],
    ) -> bytes:
        """Move the growth of `src`'s bus counter for `dst` from src's balance to dst's."""
        receipt = self._client.send(
            "settle", src, dst, batch_index, proof.as_abi(), value, list(siblings)
        )
        return receipt.tx_hash

    # ---- views ----

    def owner(self) -> bytes:
        return _bytes(self._client.call("owner"))

    def inbox(self) -> bytes:
        return _bytes(self._client.call("inbox"))

    def chain(self, chain_id: int) -> ChainConfig:
        registered, delay, window, count = self._client.call("chains", chain_id)
        return ChainConfig(bool(registered), int(delay), int(window), int(count))

    def eth_balance(self, chain_id: int) -> int:
        return int(self._client.call("ethBalance", chain_id))

    def token_balance(self, chain_id: int, l1_token: bytes) -> int:
        return int(self._client.call("tokenBalance", chain_id, _address(l1_token)))

    def proven(self, withdrawal_hash: bytes) -> tuple[bytes, int] | None:
        """(output root, batch index) the withdrawal was proven against, None if not proven."""
        root, index = self._client.call("provenWithdrawals", withdrawal_hash)
        return None if bytes(root) == bytes(32) else (bytes(root), int(index))

    def is_finalized(self, withdrawal_hash: bytes) -> bool:
        return bool(self._client.call("finalized", withdrawal_hash))

    def exit_mode(self, chain_id: int) -> tuple[bytes, int] | None:
        """(exit root, its batch index) once the chain's escape hatch opened, else None."""
        root, index = self._client.call("exitMode", chain_id)
        return None if bytes(root) == bytes(32) else (bytes(root), int(index))

    def has_escaped(self, chain_id: int, account: bytes, asset: bytes = bytes(20)) -> bool:
        """Was `account` paid `asset` (20 zero bytes: ETH) by the escape hatch?"""
        return bool(self._client.call("escaped", chain_id, _address(account), _address(asset)))

    def escape_hatch_open(self, chain_id: int) -> bool:
        """May anyone start the chain's exit mode now (it takes no deposits meanwhile)?"""
        return bool(self._client.call("escapeHatchOpen", chain_id))

    def deposit_hash(self, chain_id: int, nonce: int) -> bytes:
        """The DepositRecord hash the Portal keeps for the deposit; zero once reclaimed."""
        return bytes(self._client.call("depositHash", chain_id, nonce))

    def is_reclaimed(self, chain_id: int, nonce: int) -> bool:
        return bool(self._client.call("isReclaimed", chain_id, nonce))

    def deposit_record(self, chain_id: int, nonce: int, from_l1_block: int = 0) -> DepositRecord:
        """The record of deposit `nonce`, from its TransactionDeposited log and its L1
        transaction: the event's `from` is aliased exactly when the caller was not the
        transaction's origin (the Portal's rule), so the caller is un-aliased then."""
        log = self._deposit_log(chain_id, nonce, from_l1_block)
        found = self.reader.decode(log)
        with _mapped_errors("eth_getTransactionByHash"):
            origin = _bytes(self.l1.w3.eth.get_transaction(log["transactionHash"])["from"])
        sender = found.sender if found.sender == origin else unalias_l2_address(found.sender)
        return DepositRecord(sender, found.mint, found.l1_token, found.token_amount)

    def _deposit_log(self, chain_id: int, nonce: int, from_l1_block: int) -> Any:
        topics = [DEPOSITED_TOPIC, chain_id.to_bytes(32, "big"), nonce.to_bytes(32, "big")]
        end = self.l1.block_number()
        for start in range(from_l1_block, end + 1, LOG_CHUNK):
            logs = self.l1.logs(self.address, topics, start, min(start + LOG_CHUNK - 1, end))
            if logs:
                return logs[0]
        raise L1Rejected(f"the Portal has no deposit {nonce} of chain {chain_id}")

    def settled(self, src: int, dst: int) -> int:
        return int(self._client.call("settled", src, dst))

    def bridged_token(self, l1_token: bytes) -> bytes:
        return _bytes(self._client.call("bridgedToken", _address(l1_token)))

    def withdrawal_hash(self, w: Withdrawal) -> bytes:
        return bytes(self._client.call("withdrawalHash", _withdrawal(w)))

    # ---- DepositReader ----

    def deposits(
        self, chain_id: int, from_l1_block: int, to_l1_block: int | None = None
    ) -> list[Deposit]:
        return self.reader.deposits(chain_id, from_l1_block, to_l1_block)

    def l1_block_number(self, tag: str = "latest") -> int:
        return self.reader.l1_block_number(tag)

    def l1_block_hash(self, number: int) -> bytes | None:
        return self.reader.l1_block_hash(number)


_WITHDRAWAL_FINALIZED_TOPIC = keccak(b"WithdrawalFinalized(bytes32,bool)")


def _withdrawal(w: Withdrawal) -> tuple[Any, ...]:
    return (
        w.chain_id,
        w.nonce,
        _address(w.sender),
        _address(w.target),
        w.value,
        _address(w.l1_token),
        w.token_amount,
        w.gas_limit,
        w.data,
    )


def _address(raw: bytes) -> str:
    return Web3.to_checksum_address(raw)


def _bytes(address: str) -> bytes:
    return bytes.fromhex(address[2:])


def _topic(log: Any) -> bytes | None:
    topics = log.get("topics") or []
    return bytes(topics[0]) if topics else None


def _hex(value: Any) -> str:
    return "0x" + bytes(value).hex() if value is not None else "?"


def deploy_portal(l1: L1Client, inbox: bytes) -> tuple[Portal, int]:
    """Compile and deploy a Portal over `inbox`, which `l1`'s key must own; (portal, L1 block)."""
    compiled = compile_contract(SOURCE, "Portal")
    args = Web3().codec.encode(["address"], [_address(inbox)])
    try:
        receipt = l1.send(None, compiled.bytecode + args)
    except L1Rejected as exc:
        raise L1Rejected(
            f"the Portal deployment failed (is this key the inbox owner?): {exc}", exc.data
        ) from None
    if receipt.contract_address is None:
        raise L1Rejected("the Portal deployment created no contract")
    return Portal(l1, receipt.contract_address), receipt.block_number
