"""Prometheus metrics, on a registry of their own so several bridges can share a process."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.polls = Counter("oz_bridge_polls", "Poll ticks by result (ok, error).", ["result"], registry=r)
        self.poll_requests = Counter("oz_bridge_poll_requests", "GET /agent/runs requests made.", registry=r)
        self.malformed_runs = Counter(
            "oz_bridge_malformed_runs",
            "Records (runs, or artifacts of runs) the poller left out because the API's answer was unusable.",
            ["reason"],
            registry=r,
        )
        self.poll_stalls = Counter(
            "oz_bridge_poll_stalls", "Polls that stopped early or failed, by reason.", ["reason"], registry=r
        )
        self.poll_backoff = Gauge(
            "oz_bridge_poll_backoff_seconds",
            "Wait before the next poll after a failure (0 when polling normally).",
            registry=r,
        )
        self.api_clock_skew = Gauge(
            "oz_bridge_api_clock_skew_seconds",
            "The Oz API's clock minus this replica's, from the Date of the API's answers (whole-second resolution).",
            registry=r,
        )
        self.poll_bytes = Counter("oz_bridge_poll_bytes", "Bytes of GET /agent/runs answers read.", registry=r)
        self.runs_seen = Counter("oz_bridge_runs_seen", "Run observations read from the API.", registry=r)
        self.events = Counter("oz_bridge_events", "Events detected, by type.", ["type"], registry=r)
        self.deliveries = Counter(
            "oz_bridge_deliveries",
            "Delivery attempts by target and outcome (delivered, retry, dead).",
            ["target", "outcome"],
            registry=r,
        )
        self.delivery_latency = Histogram(
            "oz_bridge_delivery_latency_seconds",
            "From detection to acknowledgement by the target.",
            ["target"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.outbox_depth = Gauge("oz_bridge_outbox_depth", "Pending deliveries by target.", ["target"], registry=r)
        self.dead_letters = Gauge(
            "oz_bridge_dead_letters", "Dead-lettered deliveries by target.", ["target"], registry=r
        )
        self.last_poll_success = Gauge(
            "oz_bridge_last_successful_poll_timestamp_seconds", "Unix time of the last successful poll.", registry=r
        )
        self.poll_failures_in_a_row = Gauge(
            "oz_bridge_poll_consecutive_failures", "Failed polls since the last success.", registry=r
        )
        self.is_leader = Gauge("oz_bridge_is_leader", "1 while this replica polls.", registry=r)
        self.schedule_ticks = Counter(
            "oz_bridge_schedule_ticks",
            "Runs of the scheduled job (reminders, stuck runs, budgets, digests) by result (ok, error).",
            ["result"],
            registry=r,
        )
        self.schedule_last_success = Gauge(
            "oz_bridge_schedule_last_success_timestamp_seconds",
            "Unix time of the scheduled job's last successful run.",
            registry=r,
        )
        self.slack_inbound = Counter(
            "oz_bridge_slack_inbound", "Inbound Slack requests by kind and result.", ["kind", "result"], registry=r
        )
        self.slack_ignored = Counter(
            "oz_bridge_slack_ignored",
            "Inbound Slack messages and clicks dropped before the inbox, by reason.",
            ["reason"],
            registry=r,
        )
        self.followups = Counter("oz_bridge_followups", "Follow-ups sent to runs, by result.", ["result"], registry=r)
        self.cancels = Counter("oz_bridge_cancels", "Cancel requests, by result.", ["result"], registry=r)
        self.slack_run_starts = Counter(
            "oz_bridge_slack_run_starts",
            "Runs asked for from Slack, by how (mention, retry) and result (started, existing, refused, denied …).",
            ["how", "result"],
            registry=r,
        )
        self.slack_unknown_creators = Counter(
            "oz_bridge_slack_unknown_creators",
            "Run creators looked up for a DM whom Slack does not know (one per look-up, not per event).",
            registry=r,
        )
        self.slack_uploads = Counter(
            "oz_bridge_slack_uploads",
            "Screenshots sent to Slack threads, by result (uploaded, linked, retry).",
            ["result"],
            registry=r,
        )

    def set_outbox_counts(self, counts: dict[tuple[str, str], int], targets: list[str]) -> None:
        for target in targets:
            self.outbox_depth.labels(target).set(counts.get((target, "pending"), 0))
            self.dead_letters.labels(target).set(counts.get((target, "dead"), 0))

    def render(self) -> bytes:
        return generate_latest(self.registry)
