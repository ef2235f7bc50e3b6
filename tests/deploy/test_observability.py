"""The Grafana dashboard and the chart's alerts ask only for metrics a running bridge really exports,
in valid PromQL, and every alert's runbook is a section of the README."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import promql_parser
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bridge.sim import Simulator, running_simulator
from tests.deploy.chart import HA_VALUES, render
from tests.deploy.tools import ROOT
from tests.e2e.harness import API_KEY, BridgeProcess, fast_config, wait_until
from tests.fakes.slack_api import FakeSlack
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.inbound.harness import SIGNING_SECRET

DASHBOARD = ROOT / "deploy" / "grafana" / "oz-bridge.json"
BOT_TOKEN = "xoxb-observability"
SAMPLE_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
}
# What the dashboard must show, by the metric families that carry it today.
DASHBOARD_TOPICS = {
    "poll health and lag": {"oz_bridge_polls_total", "oz_bridge_last_successful_poll_timestamp_seconds"},
    "events by type": {"oz_bridge_events_total"},
    "deliveries by target and outcome": {"oz_bridge_deliveries_total"},
    "delivery latency quantiles": {"oz_bridge_delivery_latency_seconds_bucket"},
    "outbox depth": {"oz_bridge_outbox_depth"},
    "dead letters": {"oz_bridge_dead_letters"},
    "Slack inbound": {"oz_bridge_slack_inbound_total"},
    "follow-ups and cancels": {"oz_bridge_followups_total", "oz_bridge_cancels_total"},
    "leader": {"oz_bridge_is_leader"},
}
REQUIRED_ALERTS = {
    "OzBridgeNoSuccessfulPoll",
    "OzBridgeDeadLetters",
    "OzBridgeOutboxGrowing",
    "OzBridgeDeliveryLatencyHigh",
    "OzBridgeNoLeader",
}


async def scrape_a_running_bridge(workdir: Path) -> str:
    """/metrics of the real ``oz-bridge run`` with Slack and webhook targets, after one run went through."""
    sim = Simulator(api_key=API_KEY)
    async with running_simulator(sim) as oz_url, FakeSlack(token=BOT_TOKEN) as slack, WebhookReceiver() as hook:
        targets = {"alerts": {"type": "slack", "channel": "C0OBSERVE1"}, "audit": {"type": "webhook", "url": hook.url}}
        config = fast_config(targets, [{"name": "all", "events": ["*"], "to": ["alerts", "audit"]}])
        env = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_API_URL": slack.api_url, "SLACK_SIGNING_SECRET": SIGNING_SECRET}
        bridge = BridgeProcess(workdir, oz_url, config, extra_env=env)
        await bridge.start()
        try:
            sim.create_run(state="INPROGRESS")
            await wait_until(lambda: len(hook.accepted) >= 2 and bool(slack.calls_to("chat.postMessage")), what="both")
            status, text = await bridge.get("/metrics")
            assert status == 200
        finally:
            assert await bridge.stop() == 0
    return text


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """Every sample name the bridge's declared metric families can produce."""
    text = asyncio.run(scrape_a_running_bridge(tmp_path_factory.mktemp("observed")))
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.update(family.name + suffix for suffix in SAMPLE_SUFFIXES.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    assert any(name.startswith("oz_bridge_") for name in names)
    return names


def metrics_in(expr: str) -> set[str]:
    """The metric names an expression selects, from its parsed PromQL (Grafana's $__ variables as 5m)."""
    query = re.sub(r"\$__\w+", "5m", expr)
    found: set[str] = set()

    def visit(node: Any) -> bool:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            found.add(node.name)
        return True

    promql_parser.walk(promql_parser.parse(query), visit)
    return found


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in items:
        yield panel
        yield from panels(panel.get("panels", []))


def dashboard_queries() -> list[tuple[str, str]]:
    queries = [
        (panel["title"], target["expr"])
        for panel in panels(dashboard()["panels"])
        if panel["type"] != "row"
        for target in panel["targets"]
    ]
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            match = re.fullmatch(r"label_values\((.+), \w+\)", variable["query"]["query"])
            assert match, variable["query"]
            queries.append((f"${variable['name']}", match.group(1)))
    return queries


def alert_rules() -> list[dict[str, Any]]:
    rule = render("--values", str(HA_VALUES)).one("PrometheusRule")
    return [r for group in rule["spec"]["groups"] for r in group["rules"]]


def readme_anchors() -> set[str]:
    """GitHub's anchors for the README's headings."""
    anchors = set()
    for heading in re.findall(r"^#{1,6} (.+)$", (ROOT / "README.md").read_text(), re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchors.add(slug)
    return anchors


def test_the_dashboard_is_grafana_json_with_a_prometheus_data_source() -> None:
    board = dashboard()
    assert board["uid"] == "oz-bridge" and board["schemaVersion"] >= 36
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["query"] == "prometheus"
    ids = [panel["id"] for panel in panels(board["panels"])]
    assert len(ids) == len(set(ids))
    for panel in panels(board["panels"]):
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"]), panel["title"]
        if panel["type"] != "row":
            assert panel["targets"] and panel["datasource"]["uid"] == "${datasource}", panel["title"]


def test_every_dashboard_query_is_promql_naming_metrics_the_bridge_exports(exported: set[str]) -> None:
    for title, expr in dashboard_queries():
        names = metrics_in(expr)
        assert names, f"{title}: {expr} selects no metric"
        assert names <= exported, f"{title}: {sorted(names - exported)} not exported by the bridge"


def test_the_dashboard_shows_what_operators_watch() -> None:
    shown = set().union(*(metrics_in(expr) for _title, expr in dashboard_queries()))
    for topic, families in DASHBOARD_TOPICS.items():
        assert families <= shown, f"no panel for {topic}"


def test_the_chart_alerts_on_what_stops_or_slows_delivery(exported: set[str]) -> None:
    rules = alert_rules()
    assert {rule["alert"] for rule in rules} == REQUIRED_ALERTS
    for rule in rules:
        names = metrics_in(rule["expr"])
        assert names and names <= exported, f"{rule['alert']}: {sorted(names - exported)} not exported"
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert 'namespace="oz"' in rule["expr"], "alerts are scoped to the release's own series"


def test_every_alert_has_a_runbook_in_the_readme() -> None:
    anchors = readme_anchors()
    for rule in alert_rules():
        url = rule["annotations"]["runbook_url"]
        page, _, anchor = url.partition("#")
        assert page.endswith("/README.md"), url
        assert anchor in anchors, f"{rule['alert']}: README has no section #{anchor}"
        assert anchor == rule["alert"].lower()
