"""The background task behind /v1/events: every second or so it samples each app (the fleet's
view: heads over JSON-RPC, devnet.json's restarts, the verifier, the log's last error) and
scrapes its node's /metrics (services/metrics.py) for what the view lacks: the transactions
and batches counters and the send-to-durable histogram, turned into rates between samples.
Each sample becomes an `app` event, and what changed since the last one the other events
(services/admin/events.py).

Sampling blocks (HTTP to every node), so it runs in a worker thread; the events are appended
on the event loop. A failed sample is logged and the next one tried: the task never ends by
itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from rollup.errors import RollupError
from services.admin.events import EventLog, changes
from services.admin.fleet import PARALLEL, Fleet

__all__ = ["SAMPLE_INTERVAL", "Metrics", "Sampler", "latency_ms", "parse_metrics", "scrape"]

log = logging.getLogger(__name__)

SAMPLE_INTERVAL = 1.0
SCRAPE_TIMEOUT = 2.0
LATENCY = "rollup_send_to_durable_seconds"
BUS_STATES = ("sent", "acknowledged", "received", "executed", "refused")

Metrics = dict[str, Any]  # the few numbers of a node's /metrics the dashboard shows
Scrape = Callable[[str], Metrics]


def scrape(rpc_url: str) -> Metrics:
    """The numbers of a node's /metrics; empty when it does not answer."""
    url = httpx.URL(rpc_url).copy_with(path="/metrics", query=None)
    try:
        response = httpx.get(url, timeout=SCRAPE_TIMEOUT, trust_env=False)
        response.raise_for_status()
    except httpx.HTTPError:
        return {}
    return parse_metrics(response.text)


def parse_metrics(text: str) -> Metrics:
    """Counters, gauges and the latency buckets (cumulative, by upper bound) of one node."""
    found: Metrics = {"bus": {}, "latency_buckets": []}
    with contextlib.suppress(ValueError):
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                _take(found, sample.name, sample.labels, sample.value)
    if not found["bus"]:
        found["bus"] = None
    return found


def _take(found: Metrics, name: str, labels: Mapping[str, str], value: float) -> None:
    simple = {
        "rollup_transactions_sequenced_total": "transactions",
        "rollup_da_batches_total": "batches",
        "rollup_da_posted_block": "da_posted_block",
        "rollup_da_finalized_block": "da_finalized_block",
        "rollup_da_backlog_blocks": "da_backlog_blocks",
        "rollup_da_backlog_transactions": "da_backlog_transactions",
        "rollup_da_posted_bytes_total": "da_posted_bytes",
        "rollup_da_post_failures_total": "da_post_failures",
        "rollup_bus_messages_unacknowledged": "bus_unacknowledged",
        "rollup_bus_inbox_messages": "bus_inbox",
        LATENCY + "_sum": "latency_sum",
        LATENCY + "_count": "latency_count",
    }
    if name in simple:
        found[simple[name]] = value
    elif name == "rollup_bus_messages_total" and labels.get("state") in BUS_STATES:
        found["bus"][labels["state"]] = int(value)
    elif name == LATENCY + "_bucket":
        found["latency_buckets"].append((float(labels["le"]), value))


def latency_ms(before: Metrics, now: Metrics) -> dict[str, float] | None:
    """Mean and p99 (a bucket's upper bound) of send-to-durable between two scrapes; None
    without transactions in between."""
    count = now.get("latency_count", 0) - before.get("latency_count", 0)
    if count <= 0:
        return None
    mean = (now.get("latency_sum", 0) - before.get("latency_sum", 0)) / count
    return {"mean": round(mean * 1000, 3), "p99": round(_p99(before, now, mean) * 1000, 3)}


def _p99(before: Metrics, now: Metrics, mean: float) -> float:
    was = dict(before.get("latency_buckets", []))
    finite = mean
    buckets = sorted(now.get("latency_buckets", []))
    total = buckets[-1][1] - was.get(buckets[-1][0], 0) if buckets else 0
    for bound, cumulative in buckets:
        if math.isinf(bound):
            break
        finite = bound
        if cumulative - was.get(bound, 0) >= 0.99 * total:
            return bound
    return max(finite, mean)


def _rate(before: Metrics, now: Metrics, name: str, seconds: float) -> float | None:
    if name not in now or name not in before or seconds <= 0 or now[name] < before[name]:
        return None  # no metrics, or the node restarted: counters began again
    return round((now[name] - before[name]) / seconds, 3)


class Sampler:
    """Samples `fleet` into `events` every `interval` seconds while `run` runs."""

    def __init__(
        self,
        fleet: Fleet,
        events: EventLog,
        interval: float = SAMPLE_INTERVAL,
        scrape_node: Scrape = scrape,
    ) -> None:
        self.fleet, self.events, self.interval = fleet, events, interval
        self._scrape = scrape_node
        self._last: dict[str, dict[str, Any]] = {}
        self._metrics: dict[str, tuple[float, Metrics]] = {}

    async def run(self) -> None:
        while True:
            try:
                samples = await asyncio.to_thread(self.sample)
            except (RollupError, OSError, ValueError) as exc:
                log.warning("admin events: sampling failed: %s", exc)
            except Exception:  # a bug here must not end the events of a running service
                log.exception("admin events: sampling failed")
            else:
                self.publish(samples)
            await asyncio.sleep(self.interval)

    def sample(self) -> list[dict[str, Any]]:
        """Every app's view with its rates (blocks: run it in a thread). Its time is when it
        began: a pause done while it ran may not show in it, and the dashboard compares."""
        now = time.time()
        views = self.fleet.view(self.fleet.names())
        live = [v.rpc_url if v.state in ("running", "paused") else None for v in views]
        with ThreadPoolExecutor(min(PARALLEL, max(len(views), 1))) as pool:
            scraped = list(pool.map(lambda url: self._scrape(url) if url else {}, live))
        return [
            self._with_rates(view.model_dump(mode="json"), metrics, now)
            for view, metrics in zip(views, scraped, strict=True)
        ]

    def _with_rates(self, view: dict[str, Any], metrics: Metrics, now: float) -> dict[str, Any]:
        at, before = self._metrics.get(view["name"], (now, {}))
        self._metrics[view["name"]] = (now, metrics)
        rate = _rate(before, metrics, "transactions", now - at)
        view["time_ms"] = int(now * 1000)
        view["tx_per_second"] = rate if rate is not None else view["tx_per_second"]
        view["latency_ms"] = latency_ms(before, metrics) if before else None
        view["metrics"] = {
            key: metrics.get(key)
            for key in ("transactions", "batches", "bus", "bus_unacknowledged", "bus_inbox")
        }
        return view

    def publish(self, samples: Sequence[dict[str, Any]]) -> None:
        """Append what changed, then each app's sample; `removed` for an app that left."""
        seen = set()
        for sample in samples:
            name = sample["name"]
            seen.add(name)
            for type_, data in changes(self._last.get(name), sample):
                self.events.append(type_, data)
            self.events.append("app", sample)
            self._last[name] = sample
        for name in [n for n in self._last if n not in seen]:
            del self._last[name]
            self._metrics.pop(name, None)
            self.events.append("removed", {"name": name})
