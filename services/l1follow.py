"""The node's L1 follower: `L1View` (sequencer/l1view.py) over the Portal's deposits.

A thread polls the L1 through a `DepositReader` (bridge/portal.py) every `poll_s` and keeps:

    tip        the newest L1 block whose deposits it has read (it starts from the Portal's
               deployment block, so a restarted node finds every deposit it has not included)
    hashes     the hashes of the newest `keep` blocks up to the tip; when the L1 no longer has
               the tip's hash, the follower goes back to the newest block whose hash it still
               has (the fork point), drops the deposits read above it and reads on from there
    deposits   by Portal nonce, from the first one the chain has not executed
    origin     the newest block `confirmations` under the head, with its hash; never goes back
Deposits are offered up to the origin the node names and the block `confirmations` deep on the
chain as read now (which is below the origin only after a reorg deeper than the confirmations).
Each round: is the tip still canonical (else rewind), the head, the new blocks' hashes, their
deposits (eth_getLogs), then the newest and the tip's hashes again: if either changed
meanwhile, the round is dropped and read again. A reorg deeper than the hashes kept, or
deeper than the origin, is logged: what the chain included stays included (deposits are
executed by nonce, once).

The node's owner thread calls `origin()` and `deposits()` on every wake-up: they read under a
lock and never touch the network. An unreachable L1 is logged once per outage and retried with
a back-off; meanwhile the node keeps building blocks on its last origin. `on_change` runs on
the follower's thread when the origin moves or deposits arrive (the node wakes its block
producer with it). Its settings are the [l1] section of the one settings model
(services/settings.py: flags, the environment the devnet sets, rollup.toml).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bridge.l1 import L1Client
from bridge.portal import DepositReader, PortalDeposits
from rollup.deposits import Deposit
from rollup.errors import ConfigError, RollupError
from rollup.types import Hash32
from vm.stf import L1Origin

if TYPE_CHECKING:
    from services.settings import L1Section

__all__ = ["L1FollowSettings", "L1Follower", "l1_settings", "open_follower"]

log = logging.getLogger(__name__)

POLL_S = 0.25
MAX_BACKOFF_S = 5.0
MAX_STEP = 10_000  # L1 blocks read in one round (a long catch-up takes several)
L1_TIMEOUT_S = 5.0  # per request: a hung L1 delays the follower, never the node


@dataclass(frozen=True, slots=True)
class L1FollowSettings:
    l1_rpc: str
    portal: bytes
    from_block: int = 0  # the Portal's deployment block: deposits are read from there
    poll_s: float = POLL_S


def l1_settings(l1: L1Section) -> L1FollowSettings | None:
    """The follower's settings ([l1] of the settings model, which checked the address and the
    bounds); None without --portal."""
    if l1.portal is None:
        return None
    if not l1.rpc:
        raise ConfigError("--portal needs --l1-rpc (the L1 to follow)")
    return L1FollowSettings(l1.rpc, l1.portal, l1.portal_from_block or 0, l1.poll)


def open_follower(
    settings: L1FollowSettings,
    chain_id: int,
    confirmations: int,
    start_nonce: int,
    on_change: Callable[[], None] | None = None,
) -> L1Follower:
    """A follower of the Portal over JSON-RPC (not started)."""
    reader = PortalDeposits(L1Client(settings.l1_rpc, timeout=L1_TIMEOUT_S), settings.portal)
    return L1Follower(
        reader,
        chain_id,
        confirmations,
        settings.from_block,
        start_nonce,
        settings.poll_s,
        on_change,
    )


class L1Follower:
    """`L1View` of one app chain over a `DepositReader`; `start()` its thread, `stop()` it."""

    def __init__(
        self,
        reader: DepositReader,
        chain_id: int,
        confirmations: int,
        from_block: int = 0,
        start_nonce: int = 0,
        poll_s: float = POLL_S,
        on_change: Callable[[], None] | None = None,
        keep: int | None = None,
    ) -> None:
        self.reader = reader
        self.chain_id = chain_id
        self.confirmations = confirmations
        self.from_block = from_block
        self.poll_s = poll_s
        self.on_change = on_change
        # Enough hashes to find the fork point of any reorg that could touch an unconfirmed
        # deposit, with room to spare.
        self.keep = keep if keep is not None else 2 * confirmations + 32
        self._lock = threading.Lock()
        self._origin = L1Origin()
        # The newest block `confirmations` deep on the chain read now: below the origin after
        # a reorg deeper than the confirmations, when deposits wait for it, not for the origin.
        self._confirmed = -1
        self._deposits: dict[int, Deposit] = {}  # nonce -> deposit, nonces >= _low
        self._low = start_nonce  # nonces below are executed: neither kept nor offered
        self._tip = from_block - 1
        self._hashes: dict[int, bytes] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failure: str | None = None  # the error of the current outage, logged once

    # ---- the L1View (the node's owner thread) ----

    def origin(self) -> L1Origin:
        with self._lock:
            return self._origin

    def deposits(self, next_nonce: int, origin: L1Origin, limit: int) -> Sequence[Deposit]:
        due: list[Deposit] = []
        with self._lock:
            self._low = max(self._low, next_nonce)
            last_block = min(origin.number, self._origin.number, self._confirmed)
            while len(due) < limit:
                deposit = self._deposits.get(next_nonce + len(due))
                if deposit is None or deposit.l1_block > last_block:
                    break  # a gap, or not confirmed yet: nothing after it either
                due.append(deposit)
        return due

    # ---- what it knows, for status pages and tests ----

    @property
    def tip(self) -> int:
        return self._tip

    def pending(self) -> int:
        """Deposits read from the L1 and not executed yet (confirmed or not)."""
        with self._lock:
            return sum(1 for nonce in self._deposits if nonce >= self._low)

    @property
    def reachable(self) -> bool:
        return self._failure is None

    # ---- the thread ----

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="l1-follower", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = L1_TIMEOUT_S + 1) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                changed, behind = self.poll()
                if changed and self.on_change is not None:
                    self.on_change()
            except Exception as exc:  # noqa: BLE001 - the thread must outlive any one round
                failures += 1
                self._failed(exc)
                self._stop.wait(min(self.poll_s * 2**failures, MAX_BACKOFF_S))
                continue
            failures = 0
            if self._failure is not None:
                log.info("L1 reachable again: following from L1 block %d", self._tip)
                self._failure = None
            if not behind:
                self._stop.wait(self.poll_s)

    def _failed(self, exc: Exception) -> None:
        """Log an outage once, and any other error once per cause; retry regardless. A
        malformed Portal log (L1Rejected) is never skipped: the follower waits on it."""
        reason, previous = f"{type(exc).__name__}: {exc}", self._failure
        self._failure = reason
        if isinstance(exc, ConnectionError):
            if previous is None:
                log.warning(
                    "L1 unreachable (blocks keep L1 origin %d; retrying): %s",
                    self._origin.number,
                    exc,
                )
        elif reason != previous:
            log.error(
                "cannot follow the L1 (blocks keep L1 origin %d; retrying): %s",
                self._origin.number,
                reason,
                exc_info=not isinstance(exc, RollupError),
            )

    # ---- one round (the follower's thread; public for tests) ----

    def poll(self) -> tuple[bool, bool]:
        """Follow a reorg, then read what the L1 has past the tip. (changed, still behind)."""
        changed = self._follow_reorg()
        head = self.reader.l1_block_number("latest")
        if head <= self._tip:
            return changed, False
        end = min(head, self._tip + MAX_STEP)
        hashes = self._read_hashes(max(self._tip + 1, end - self.keep + 1), end)
        if hashes is None:
            return changed, False  # the L1 shrank under us: a reorg, seen next round
        found = self.reader.deposits(self.chain_id, self._tip + 1, end)
        if self.reader.l1_block_hash(end) != hashes[end] or not self._tip_canonical():
            return changed, True  # reorged while read: read again
        confirmed = min(end, head - self.confirmations)
        origin_hash = hashes.get(confirmed) if confirmed > self._origin.number else None
        if confirmed > self._origin.number and origin_hash is None:
            origin_hash = self.reader.l1_block_hash(confirmed)
        return self._advance(end, hashes, found, confirmed, origin_hash) or changed, end < head

    def _read_hashes(self, first: int, last: int) -> dict[int, bytes] | None:
        hashes = {}
        for number in range(first, last + 1):
            block_hash = self.reader.l1_block_hash(number)
            if block_hash is None:
                return None
            hashes[number] = block_hash
        return hashes

    def _tip_canonical(self) -> bool:
        known = self._hashes.get(self._tip)
        return known is None or self.reader.l1_block_hash(self._tip) == known

    def _follow_reorg(self) -> bool:
        """If the tip's hash is no longer the L1's, rewind to the fork point. True if so."""
        if self._tip_canonical():
            return False
        fork = min(self._hashes) - 1
        for number in range(self._tip - 1, fork, -1):
            known = self._hashes.get(number)
            if known is not None and self.reader.l1_block_hash(number) == known:
                fork = number
                break
        else:
            log.error(
                "L1 reorg deeper than the %d block hashes kept: reading on from L1 "
                "block %d; deposits in older blocks are taken as final",
                len(self._hashes),
                fork + 1,
            )
        self._rewind(fork)
        return True

    def _rewind(self, fork: int) -> None:
        with self._lock:
            self._forget_executed()
            dropped = [n for n, d in self._deposits.items() if d.l1_block > fork]
            for nonce in dropped:
                del self._deposits[nonce]
            for number in [n for n in self._hashes if n > fork]:
                del self._hashes[number]
            self._tip = fork
            self._confirmed = min(self._confirmed, fork)
            origin = self._origin
        log.warning(
            "L1 reorg: back to L1 block %d (the fork point), %d deposit(s) dropped",
            fork,
            len(dropped),
        )
        if origin.number > fork:
            log.error(
                "L1 reorg deeper than %d confirmations: L1 origin %d (0x%s) is no longer "
                "canonical; blocks name newer origins once the L1 has them",
                self.confirmations,
                origin.number,
                origin.hash.hex(),
            )

    def _advance(
        self,
        end: int,
        hashes: dict[int, bytes],
        found: Sequence[Deposit],
        confirmed: int,
        origin_hash: bytes | None,
    ) -> bool:
        """Take one round's reading. True if the origin moved or deposits arrived."""
        with self._lock:
            self._forget_executed()
            fresh = [d for d in found if d.nonce >= self._low]
            for deposit in fresh:
                self._deposits[deposit.nonce] = deposit
            self._hashes.update(hashes)
            for number in [n for n in self._hashes if n <= end - self.keep]:
                del self._hashes[number]
            self._tip = end
            moved = confirmed > self._confirmed
            self._confirmed = confirmed
            if origin_hash is not None and confirmed > self._origin.number:
                self._origin = L1Origin(confirmed, Hash32(origin_hash))
        return bool(fresh) or moved

    def _forget_executed(self) -> None:
        for nonce in [n for n in self._deposits if n < self._low]:
            del self._deposits[nonce]
