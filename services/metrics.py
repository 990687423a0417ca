"""Prometheus metrics of the node, its DA poster, its bus service, its L1 follower and the
verifier: one prefix (`rollup_`), an `app` label on every series, base units, `_total` on
counters, histograms for durations.

Each process has its own `Metrics` (a `CollectorRegistry`, never the global one, so tests and
in-process harnesses do not collide). Its collectors read the counters the components already
keep when a scrape comes, so the hot path pays nothing for most series; what has to be
observed as it happens is observed per block, per body or per transaction into `Durations`,
a histogram without a lock. The text is rendered at most once per `min_interval`: a flood of
scrapes costs one rendering per interval. Label values are bounded: `method` takes the names
the node serves, "other" for any other name and "batch" (durations) for a batch.

The node (GET /metrics on its JSON-RPC port; counters of "this process" start at 0 with it):
    rollup_node_info{chain_id,vm}                    gauge 1
    rollup_latest_block                              gauge: newest durable block
    rollup_blocks_sequenced_total                    counter
    rollup_transactions_sequenced_total              counter
    rollup_block_build_seconds                       histogram, per block
    rollup_mempool_transactions{state}               gauge: pending, queued
    rollup_rpc_requests_total{method}                counter
    rollup_rpc_errors_total{method}                  counter
    rollup_rpc_request_duration_seconds{method}      histogram, per HTTP/WebSocket body
    rollup_send_to_durable_seconds                   histogram, per transaction
    rollup_da_posted_block, rollup_da_finalized_block, rollup_da_backlog_blocks,
    rollup_da_backlog_transactions                   gauges (with a DA poster)
    rollup_da_batches_total, rollup_da_posted_bytes_total, rollup_da_post_failures_total
    rollup_da_post_seconds                           histogram, per batch
    rollup_bus_messages_total{state}                 counter: sent, acknowledged, resent,
                                                     received, executed, refused, evicted
    rollup_bus_messages_unacknowledged, rollup_bus_inbox_messages      gauges (with a bus)
    rollup_bus_frames_rejected_total{rule}           counter
    rollup_bus_round_trip_seconds                    histogram: durable here -> acknowledged
    rollup_l1_tip_block, rollup_l1_origin_block, rollup_l1_deposits_pending, rollup_l1_reachable
    rollup_process_start_time_seconds                gauge (restarts: its `changes()`)
The verifier (GET /metrics on its --port), each with `chain_id` besides `app`:
    rollup_verifier_verified_block, _finalized_block, _diverged, _diverged_block, _waiting
    rollup_verifier_batches_total, _blocks_total, _transactions_total, _messages_checked_total,
    _l1_reorgs_total, _rewinds_total, _replay_seconds_total; and rollup_process_start_time_seconds
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString

if TYPE_CHECKING:
    from da.verifier import Verifier, VerifierStatus
    from sequencer.node import Sequencer
    from services.bus.service import BusService
    from services.da_node import DAService
    from services.l1follow import L1Follower
    from services.producer import BlockProducer

__all__ = [
    "CONTENT_TYPE",
    "PREFIX",
    "OTHER",
    "BATCH",
    "Durations",
    "Metrics",
    "RpcStats",
    "node_metrics",
    "SequencerCollector",
    "RpcCollector",
    "PosterCollector",
    "BusCollector",
    "L1Collector",
    "VerifierCollector",
    "ProcessCollector",
]

PREFIX = "rollup_"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OTHER = "other"  # the method label of names the node does not serve: a bounded label set
BATCH = "batch"  # the method label of a body's duration when the body is a batch
MIN_INTERVAL = 0.5  # seconds between two renderings of the text

# This process's start, to within the import of this module (restarts: its changes).
STARTED = time.time()

# Bucket bounds, in seconds.
BUILD_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
RPC_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
DURABLE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
ROUND_TRIP_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
POST_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class Collector(Protocol):
    def collect(self) -> Iterable[Metric]: ...


class Durations:
    """A histogram one thread writes without a lock (a list of bucket counts) and a scrape
    reads: about five times cheaper per observation than prometheus_client's `Histogram`,
    for the paths that observe once per transaction."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last one: above every bound
        self.sum = 0.0

    def observe(self, seconds: float, count: int = 1) -> None:
        """`count` observations of `seconds` each."""
        self.counts[bisect_left(self.bounds, seconds)] += count
        self.sum += seconds * count

    def buckets(self) -> list[tuple[str, float]]:
        """Cumulative (le, count) pairs ending with +Inf, from one copy of the counts, so the
        +Inf bucket (the count) agrees with the others."""
        counts, total, out = list(self.counts), 0, []
        for bound, count in zip(self.bounds, counts):
            total += count
            out.append((floatToGoString(bound), float(total)))
        out.append(("+Inf", float(total + counts[-1])))
        return out


class Metrics:
    """One process's registry and its rendered text."""

    def __init__(self, app: str, min_interval: float = MIN_INTERVAL) -> None:
        self.app = app
        self.registry = CollectorRegistry()
        self.min_interval = min_interval
        self._text: bytes | None = None
        self._rendered_at = 0.0
        self.add(ProcessCollector(app))

    def add(self, collector: Collector) -> None:
        self.registry.register(collector)

    def render(self) -> bytes:
        """The exposition text, rendered again only once `min_interval` has passed."""
        now = time.monotonic()
        if self._text is None or now - self._rendered_at >= self.min_interval:
            self._text, self._rendered_at = generate_latest(self.registry), now
        return self._text


def node_metrics(node: Sequencer, producer: BlockProducer) -> Metrics:
    """A node's registry with the sequencer's series (the other components add theirs)."""
    metrics = Metrics(node.manifest.name)
    metrics.add(SequencerCollector(metrics.app, node, producer))
    return metrics


# ---- families of one value under the app label ----


def gauge(name: str, doc: str, app: str, value: float) -> GaugeMetricFamily:
    family = GaugeMetricFamily(PREFIX + name, doc, labels=["app"])
    family.add_metric([app], value)
    return family


def counter(name: str, doc: str, app: str, value: float) -> CounterMetricFamily:
    """`name` without `_total`: the text adds it."""
    family = CounterMetricFamily(PREFIX + name, doc, labels=["app"])
    family.add_metric([app], value)
    return family


def counters(
    name: str, doc: str, app: str, label: str, values: Mapping[str, float]
) -> CounterMetricFamily:
    family = CounterMetricFamily(PREFIX + name, doc, labels=["app", label])
    for key, value in sorted(values.items()):
        family.add_metric([app, key], value)
    return family


def histogram(
    name: str, doc: str, app: str, durations: Mapping[str, Durations] | Durations, label: str = ""
) -> HistogramMetricFamily:
    """One histogram, or one per value of `label` when `durations` is a mapping."""
    if isinstance(durations, Durations):
        family = HistogramMetricFamily(PREFIX + name, doc, labels=["app"])
        family.add_metric([app], durations.buckets(), durations.sum)
        return family
    family = HistogramMetricFamily(PREFIX + name, doc, labels=["app", label])
    for key, one in sorted(durations.items()):
        family.add_metric([app, key], one.buckets(), one.sum)
    return family


# ---- the collectors ----


class ProcessCollector:
    def __init__(self, app: str, started: float = STARTED) -> None:
        self.app, self.started = app, started

    def collect(self) -> Iterable[Metric]:
        yield gauge(
            "process_start_time_seconds",
            "Start of this process, in seconds since the epoch (restarts: its changes).",
            self.app,
            self.started,
        )


class SequencerCollector:
    """The chain, the block producer and the pool, read when scraped (the owner thread)."""

    def __init__(self, app: str, node: Sequencer, producer: BlockProducer) -> None:
        self.app, self.node, self.producer = app, node, producer

    def collect(self) -> Iterable[Metric]:
        app, node, producer = self.app, self.node, self.producer
        info = InfoMetricFamily(PREFIX + "node", "The app's chain.", labels=["app"])
        info.add_metric([app], {"chain_id": str(node.chain_id), "vm": node.manifest.vm})
        yield info
        yield gauge("latest_block", "Newest durable block.", app, node.committed.number)
        yield counter(
            "blocks_sequenced",
            "Blocks built and made durable by this process.",
            app,
            producer.blocks,
        )
        yield counter(
            "transactions_sequenced",
            "Transactions in the blocks this process made durable.",
            app,
            producer.transactions,
        )
        yield histogram(
            "block_build_seconds", "Time to execute and seal a block.", app, producer.build_seconds
        )
        pool = GaugeMetricFamily(
            PREFIX + "mempool_transactions",
            "Transactions in the pool: pending (executable now) or queued (a nonce gap).",
            labels=["app", "state"],
        )
        pool.add_metric([app, "pending"], node.mempool.ready_count)
        pool.add_metric([app, "queued"], node.mempool.queued_count)
        yield pool


class RpcStats:
    """JSON-RPC counts and durations, kept by the server on the event loop. Method labels are
    the names the node serves, `OTHER` for any other, and `BATCH` (durations only) for a
    batch: a client cannot add label values."""

    def __init__(self, methods: Iterable[str]) -> None:
        self.methods = frozenset(methods)
        self.requests: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self.durations: dict[str, Durations] = {}
        self.send_to_durable = Durations(DURABLE_BUCKETS)

    def label(self, method: object) -> str:
        return method if isinstance(method, str) and method in self.methods else OTHER

    def record(
        self, labels: Sequence[str], answers: Sequence[Mapping[str, object] | None], seconds: float
    ) -> None:
        """One body answered: its requests' labels, their answers in the same order (None for a
        notification) and the time it took."""
        requests, errors = self.requests, self.errors
        for label, answer in zip(labels, answers):
            requests[label] = requests.get(label, 0) + 1
            if answer is not None and "error" in answer:
                errors[label] = errors.get(label, 0) + 1
        key = labels[0] if len(labels) == 1 else BATCH
        durations = self.durations.get(key)
        if durations is None:
            durations = self.durations[key] = Durations(RPC_BUCKETS)
        durations.observe(seconds)


class RpcCollector:
    def __init__(self, app: str, stats: RpcStats) -> None:
        self.app, self.stats = app, stats

    def collect(self) -> Iterable[Metric]:
        app, stats = self.app, self.stats
        yield counters(
            "rpc_requests", "JSON-RPC requests answered, by method.", app, "method", stats.requests
        )
        yield counters(
            "rpc_errors",
            "JSON-RPC requests answered with an error, by method.",
            app,
            "method",
            stats.errors,
        )
        yield histogram(
            "rpc_request_duration_seconds",
            'Time to answer one HTTP or WebSocket body: its method, or "batch" for a batch.',
            app,
            dict(stats.durations),
            "method",
        )
        yield histogram(
            "send_to_durable_seconds",
            "From an eth_sendRawTransaction's arrival to its block being durable.",
            app,
            stats.send_to_durable,
        )


class PosterCollector:
    """The DA poster's heads and counters (plain reads of what its thread writes) and the
    back-pressure gate's backlog (brought up to date on the owner thread, as admission does)."""

    def __init__(self, app: str, service: DAService) -> None:
        self.app, self.service = app, service

    def collect(self) -> Iterable[Metric]:
        app, status = self.app, self.service.poster.status
        blocks, txs = self.service.backlog.refresh()
        yield gauge(
            "da_posted_block", "Last block of the newest commitment on the L1.", app, status.safe
        )
        yield gauge(
            "da_finalized_block",
            "Last block of the newest commitment in a finalized L1 block.",
            app,
            status.finalized,
        )
        yield gauge("da_backlog_blocks", "Durable blocks not yet posted.", app, max(blocks, 0))
        yield gauge("da_backlog_transactions", "Transactions of the unposted blocks.", app, txs)
        yield counter("da_batches", "Batches posted by this process.", app, status.batches)
        yield counter(
            "da_posted_bytes",
            "Bytes submitted to the DA backend by this process.",
            app,
            status.bytes,
        )
        yield counter(
            "da_post_failures",
            "Posting cycles that failed (and were retried).",
            app,
            status.failures,
        )
        yield histogram(
            "da_post_seconds",
            "Time to post one batch: DA submissions and the L1 commitment.",
            app,
            self.service.post_seconds,
        )


class BusCollector:
    def __init__(self, app: str, service: BusService) -> None:
        self.app, self.service = app, service

    def collect(self) -> Iterable[Metric]:
        app, bus = self.app, self.service
        channels = list(bus.channels.values())
        sent, acked = sum(c.sent for c in channels), sum(c.acked for c in channels)
        inbox = bus.node.inbox
        states = {
            "sent": sent,  # channel nonces: they count across restarts
            "acknowledged": acked,
            "resent": bus.resent,
            "received": bus.received,
            "executed": bus.executed,
            "refused": inbox.refused,
            "evicted": inbox.evicted,
        }
        yield counters(
            "bus_messages",
            "Cross-app messages by state: sent, acknowledged by their destination, re-sent; "
            "received, executed here, refused (inbox full), evicted from the inbox.",
            app,
            "state",
            states,
        )
        yield gauge(
            "bus_messages_unacknowledged",
            "Messages sent and not yet acknowledged.",
            app,
            sent - acked,
        )
        yield gauge("bus_inbox_messages", "Arrived messages waiting for a block.", app, len(inbox))
        yield counters(
            "bus_frames_rejected",
            "Arriving frames refused, by the rule they broke.",
            app,
            "rule",
            dict(bus.rejections),
        )
        yield histogram(
            "bus_round_trip_seconds",
            "From a message's block being durable here to its destination's acknowledgement.",
            app,
            bus.round_trip,
        )


class L1Collector:
    def __init__(self, app: str, follower: L1Follower) -> None:
        self.app, self.follower = app, follower

    def collect(self) -> Iterable[Metric]:
        app, follower = self.app, self.follower
        yield gauge("l1_tip_block", "Newest L1 block whose deposits were read.", app, follower.tip)
        yield gauge(
            "l1_origin_block", "L1 origin of the next block.", app, follower.origin().number
        )
        yield gauge(
            "l1_deposits_pending", "Deposits read and not executed yet.", app, follower.pending()
        )
        yield gauge("l1_reachable", "1 while the L1 answers.", app, int(follower.reachable))


class VerifierCollector:
    """The verifier's status; its series carry `chain_id` besides `app`."""

    def __init__(self, app: str, verifier: Verifier) -> None:
        self.app, self.verifier = app, verifier

    def collect(self) -> Iterable[Metric]:
        status = self.verifier.status()
        labels = [self.app, str(status.chain_id)]
        gauges, totals = verifier_rows(status)
        for name, doc, value in gauges:
            family = GaugeMetricFamily(f"{PREFIX}verifier_{name}", doc, labels=["app", "chain_id"])
            family.add_metric(labels, value)
            yield family
        for name, doc, value in totals:
            total = CounterMetricFamily(f"{PREFIX}verifier_{name}", doc, labels=["app", "chain_id"])
            total.add_metric(labels, value)
            yield total


Row = tuple[str, str, float]


def verifier_rows(status: VerifierStatus) -> tuple[list[Row], list[Row]]:
    """(gauges, counters) of a verifier's status: name, help, value."""
    diverged = status.state == "diverged"
    gauges: list[Row] = [
        ("verified_block", "Newest block re-derived and checked.", status.verified),
        (
            "finalized_block",
            "Newest verified block whose L1 commitment is final.",
            status.finalized,
        ),
        ("diverged", "1 once the posted chain diverged.", int(diverged)),
        ("diverged_block", "Block of the divergence (0 while in sync).", status.block * diverged),
        ("waiting", "1 while the L1 or DA cannot answer.", int(status.waiting is not None)),
    ]
    totals: list[Row] = [
        ("batches", "Batches verified.", status.batches),
        ("blocks", "Blocks verified.", status.blocks),
        ("transactions", "Transactions re-executed.", status.txs),
        (
            "messages_checked",
            "Inbound messages found in their source's DA data.",
            status.messages_checked,
        ),
        ("l1_reorgs", "L1 reorgs under what it had read, followed.", status.l1_reorgs),
        ("rewinds", "Times it re-derived from genesis (a revert, a reorg).", status.rewinds),
        ("replay_seconds", "Time spent deriving and re-executing.", status.seconds_replaying),
    ]
    return gauges, totals
