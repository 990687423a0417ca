"""What Prometheus scrapes, and the admin service's own series.

    GET /v1/targets   Prometheus HTTP service discovery (`http_sd_configs`): one group per
                      process with a /metrics (each node on its RPC port, each verifier on
                      its own), labelled with `app` and `job` (node | verifier)
    GET /metrics      this service's text: each app's node restarts by the supervisor
                      (`rollup_process_restarts_total{app}`, the count devnet.json keeps)
                      and whether it is stopped by an operator

Both need the read token: a prometheus.yml gives it with `authorization: {credentials_file:
.../read.token}`. Targets come only from devnet.json, never from the request.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import APIRouter, Depends
from fastapi.responses import PlainTextResponse
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from services.admin.auth import require_reader
from services.admin.explorer import NodesDep
from services.admin.fleet import Nodes
from services.admin.models import TargetGroup
from services.admin.problems import PROBLEM_RESPONSES
from services.admin.query import plain_query
from services.devnet.state import AppRecord
from services.metrics import CONTENT_TYPE, PREFIX

__all__ = ["router", "scrape_targets"]

router = APIRouter(
    tags=["metrics"],
    dependencies=[Depends(require_reader), Depends(plain_query)],
    responses=PROBLEM_RESPONSES,
)


def _host_port(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}"


def scrape_targets(records: list[AppRecord]) -> list[TargetGroup]:
    groups: list[TargetGroup] = []
    for record in records:
        name = record["name"]
        node = TargetGroup(
            targets=[_host_port(record["rpc_url"])], labels={"app": name, "job": "node"}
        )
        groups.append(node)
        verifier = record.get("verifier")
        if verifier is not None:
            groups.append(
                TargetGroup(
                    targets=[f"127.0.0.1:{verifier['port']}"],
                    labels={"app": name, "job": "verifier"},
                )
            )
    return groups


def _records(nodes: Nodes) -> list[AppRecord]:
    devnet = nodes.devnet()
    return list(devnet["apps"]) if devnet is not None else []


@router.get("/v1/targets", summary="Prometheus HTTP service discovery: every /metrics here")
def get_targets(nodes: NodesDep) -> list[TargetGroup]:
    return scrape_targets(_records(nodes))


class _Supervised:
    """A collector of what devnet.json says about each app's node."""

    def __init__(self, records: list[AppRecord]) -> None:
        self.records = records

    def collect(self) -> list[Metric]:
        restarts = CounterMetricFamily(
            f"{PREFIX}process_restarts",
            "Times the supervisor started an app's node again after it exited",
            labels=["app"],
        )
        stopped = GaugeMetricFamily(
            f"{PREFIX}process_stopped",
            "1 while an operator keeps an app's node stopped",
            labels=["app"],
        )
        for record in self.records:
            restarts.add_metric([record["name"]], record["restarts"])
            stopped.add_metric([record["name"]], 1 if record.get("stopped") else 0)
        return [restarts, stopped]


@router.get(
    "/metrics",
    summary="This service's Prometheus text: restarts and stops of each app's node",
    response_class=PlainTextResponse,
)
def get_metrics(nodes: NodesDep) -> PlainTextResponse:
    registry = CollectorRegistry()
    registry.register(_Supervised(_records(nodes)))
    return PlainTextResponse(generate_latest(registry), media_type=CONTENT_TYPE)
