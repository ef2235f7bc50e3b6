"""The Grafana dashboard shows every metric a running bridge exports, and it and the chart's alerts ask
only for those, in valid PromQL that rates counters and takes quantiles of histograms; the README's
metric table is that same set, and every alert's runbook is a section of the README."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import promql_parser
import pytest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families

from bridge.metrics import Metrics
from bridge.sim import Simulator, running_simulator
from tests.deploy.chart import CHART, HA_VALUES, render
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
ROWS = ["Polling", "Delivery", "Slack inbound", "Slack outbound", "Schedule", "Process"]
REQUIRED_ALERTS = {
    "OzBridgeNoSuccessfulPoll",
    "OzBridgeNotReady",
    "OzBridgePollFailing",
    "OzBridgePollCutShort",
    "OzBridgeApiClockSkew",
    "OzBridgeNoLeader",
    "OzBridgeDeadLetters",
    "OzBridgeOutboxGrowing",
    "OzBridgeDeliveriesFailing",
    "OzBridgeDeliveryLatencyHigh",
    "OzBridgeSlackRequestsRefused",
    "OzBridgeSlackActionsGivenUp",
    "OzBridgeScheduleFailing",
}
RATES = {"rate", "increase", "irate"}


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
def families(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The metric families a running bridge's /metrics declares, by name, with their type."""
    text = asyncio.run(scrape_a_running_bridge(tmp_path_factory.mktemp("observed")))
    declared = {family.name: family.type for family in text_string_to_metric_families(text)}
    # prometheus-client writes each counter's and histogram's start time as a gauge family of its own.
    found = {
        name: kind
        for name, kind in declared.items()
        if not (name.endswith("_created") and declared.get(name.removesuffix("_created")) in SAMPLE_SUFFIXES)
    }
    assert any(name.startswith("oz_bridge_") for name in found)
    return found


@pytest.fixture(scope="module")
def exported(families: dict[str, str]) -> set[str]:
    """Every sample name the bridge's declared metric families can produce."""
    return {sample for name, kind in families.items() for sample in samples_of(name, kind)}


def samples_of(family: str, kind: str) -> set[str]:
    return {family + suffix for suffix in SAMPLE_SUFFIXES.get(kind, ("",))}


def exposed_name(family: str, kind: str) -> str:
    """The name operators know a family by: a counter's with ``_total``, any other's as declared."""
    return family + "_total" if kind == "counter" else family


def declared_labels() -> dict[str, tuple[str, ...]]:
    """The label names of each metric bridge.metrics declares (a family with no samples yet shows none)."""
    labels: dict[str, tuple[str, ...]] = {}
    for metric in vars(Metrics()).values():
        if isinstance(metric, MetricWrapperBase):
            (family,) = metric.describe()
            labels[family.name] = tuple(metric._labelnames)
    return labels


def selections(expr: str) -> list[tuple[str, frozenset[str]]]:
    """Each metric an expression selects, with the functions around it, from its parsed PromQL
    (Grafana's $__ variables read as 5m)."""
    query = re.sub(r"\$__\w+", "5m", expr)
    around: list[str] = []
    found: list[tuple[str, frozenset[str]]] = []

    def enter(node: Any) -> None:
        if isinstance(node, promql_parser.Call):
            around.append(node.func.name)
        elif isinstance(node, promql_parser.VectorSelector) and node.name:
            found.append((node.name, frozenset(around)))

    def leave(node: Any) -> None:
        if isinstance(node, promql_parser.Call):
            around.pop()

    promql_parser.walk(promql_parser.parse(query), enter, leave)
    return found


def metrics_in(expr: str) -> set[str]:
    return {name for name, _around in selections(expr)}


def misread(expr: str, families: dict[str, str]) -> list[str]:
    """Why a query reads a metric wrongly: a counter's total is only meaningful as a rate, a histogram's
    buckets only as quantiles of their rate, and the rate of a gauge is meaningless."""
    problems: list[str] = []
    kinds = {sample: kind for name, kind in families.items() for sample in samples_of(name, kind)}
    for name, around in selections(expr):
        kind = kinds.get(name)
        if kind == "counter" and name.endswith("_total") and not around & RATES:
            problems.append(f"{name} is a counter: take its rate or increase")
        if kind == "histogram" and name.endswith("_bucket") and not ("histogram_quantile" in around and around & RATES):
            problems.append(f"{name}: histogram_quantile of its rate")
        if kind == "gauge" and around & RATES:
            problems.append(f"{name} is a gauge: rate() means nothing for it")
    return problems


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


def readme_section(heading: str) -> str:
    """The README's text under ``heading`` up to the next heading of the same or a higher level."""
    text = (ROOT / "README.md").read_text()
    level = heading.split(" ")[0]
    start = text.index(f"\n{heading}\n")
    following = re.search(rf"^#{{1,{len(level)}}} ", text[start + len(heading) + 2 :], re.MULTILINE)
    return text[start : start + len(heading) + 2 + following.start()] if following else text[start:]


def readme_metric_table() -> dict[str, tuple[str, tuple[str, ...]]]:
    """The Monitoring section's table of metrics: name → (type, label names)."""
    rows = re.findall(r"^\| `(\w+)` \| (\w+) \| ([^|]*) \|", readme_section("### Monitoring"), re.MULTILINE)
    return {name: (kind, tuple(re.findall(r"`(\w+)`", labels))) for name, kind, labels in rows}


def chart_alerts() -> dict[str, str]:
    """Each alert the chart's PrometheusRule template defines, with the README anchor its runbook names
    (read from the template itself, so this holds where Helm is not installed too)."""
    template = (CHART / "templates" / "prometheusrule.yaml").read_text()
    blocks = re.split(r"^\s*- alert: ", template, flags=re.MULTILINE)[1:]
    alerts: dict[str, str] = {}
    for block in blocks:
        name = block.split("\n", 1)[0].strip()
        anchors = re.findall(r'"%s#([\w-]+)"', block)
        assert len(anchors) == 1, f"{name}: runbook_url must name one README anchor, found {anchors}"
        alerts[name] = anchors[0]
    return alerts


def overlap(a: dict[str, int], b: dict[str, int]) -> bool:
    """Whether two gridPos boxes share any cell."""
    side_by_side = a["x"] + a["w"] <= b["x"] or b["x"] + b["w"] <= a["x"]
    one_above = a["y"] + a["h"] <= b["y"] or b["y"] + b["h"] <= a["y"]
    return not (side_by_side or one_above)


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
            assert all(target["datasource"]["uid"] == "${datasource}" for target in panel["targets"]), panel["title"]


def test_the_dashboard_groups_its_panels_in_rows_that_do_not_overlap() -> None:
    board = dashboard()["panels"]
    assert [panel["title"] for panel in board if panel["type"] == "row"] == ROWS
    assert board[0]["type"] == "row", "every panel belongs to a row"
    placed = [(panel["title"], panel["gridPos"]) for panel in board]
    for title, box in placed:
        assert box["x"] >= 0 and box["y"] >= 0 and box["x"] + box["w"] <= 24, f"{title} is off the grid: {box}"
    for i, (title, a) in enumerate(placed):
        for other, b in placed[i + 1 :]:
            assert not overlap(a, b), f"{title} and {other} overlap: {a} {b}"


def test_every_dashboard_query_is_promql_naming_metrics_the_bridge_exports(
    exported: set[str], families: dict[str, str]
) -> None:
    for title, expr in dashboard_queries():
        names = metrics_in(expr)
        assert names, f"{title}: {expr} selects no metric"
        assert names <= exported, f"{title}: {sorted(names - exported)} not exported by the bridge"
        assert not misread(expr, families), f"{title}: {misread(expr, families)}"


def test_every_metric_the_bridge_exports_is_on_the_dashboard(families: dict[str, str]) -> None:
    shown = set().union(*(metrics_in(expr) for _title, expr in dashboard_queries()))
    missing = sorted(exposed_name(name, kind) for name, kind in families.items() if not samples_of(name, kind) & shown)
    assert not missing, f"no dashboard panel shows {missing}"


def test_the_readme_tables_every_exported_metric_with_its_type_and_labels(families: dict[str, str]) -> None:
    table = readme_metric_table()
    labels = declared_labels()
    expected = {exposed_name(name, kind): (kind, labels.get(name)) for name, kind in families.items()}
    unlisted, unknown = sorted(set(expected) - set(table)), sorted(set(table) - set(expected))
    assert not unlisted, f"exported but not in the README's metric table: {unlisted}"
    assert not unknown, f"in the README's metric table but not exported: {unknown}"
    for name, (kind, names) in expected.items():
        assert names is not None, f"{name} is not declared in bridge.metrics: this test cannot know its labels"
        assert table[name] == (kind, names), f"README says {name} is {table[name]}, the code {(kind, names)}"


def test_the_chart_alerts_on_what_stops_or_slows_the_bridge(exported: set[str], families: dict[str, str]) -> None:
    rules = alert_rules()
    assert {rule["alert"] for rule in rules} == REQUIRED_ALERTS
    for rule in rules:
        names = metrics_in(rule["expr"])
        assert names and names <= exported, f"{rule['alert']}: {sorted(names - exported)} not exported"
        assert not misread(rule["expr"], families), f"{rule['alert']}: {misread(rule['expr'], families)}"
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


def test_the_readme_has_one_runbook_per_alert_of_the_chart() -> None:
    alerts = chart_alerts()
    assert set(alerts) == REQUIRED_ALERTS
    anchors = readme_anchors()
    for alert, anchor in alerts.items():
        assert anchor == alert.lower() and anchor in anchors, f"{alert}: README has no section #{anchor}"
    runbooks = re.findall(r"^#### (\w+)$", readme_section("### Runbooks"), re.MULTILINE)
    assert sorted(runbooks) == sorted(alerts), "README runbooks and the chart's alerts differ"
