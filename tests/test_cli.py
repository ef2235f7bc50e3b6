"""The command line as a user meets it: exit codes, clear messages, no tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bridge.diff import diff_run
from bridge.store import outbox
from bridge.store.engine import create_engine, migrate
from tests.conftest import make_run
from tests.test_diff import NOW, START


def oz_bridge(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OZ_BRIDGE_", "SLACK_", "WARP_"))}
    return subprocess.run(
        [sys.executable, "-m", "bridge.cli", *args],
        cwd=cwd, env={**base, **(env or {})}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("yaml_text", "env", "message"),
    [
        ("poll: [1, 2\n", {}, "bad.yaml: line 2, column 1: expected ',' or ']'"),
        (
            "targets:\n  a: {type: console}\nroutes:\n  - {name: r, events: ['*'], to: [b]}\n",
            {},
            "routes[0] (r).to[0]: unknown target 'b'",
        ),
        (
            "targets:\n  h: {type: webhook, url: '${HOOK_URL}'}\n",
            {},
            "targets.h.url: environment variable HOOK_URL is not set",
        ),
        ("targets:\n  s: {type: slack, channel: C1}\n", {}, "targets.s: a slack target needs SLACK_BOT_TOKEN"),
    ],
)
def test_bad_config_exits_2_with_one_clear_line_per_problem(
    tmp_path: Path, yaml_text: str, env: dict[str, str], message: str
) -> None:
    (tmp_path / "bad.yaml").write_text(yaml_text)
    commands = (["check-config"], ["run"]) if "slack target" not in message else (["check-config"],)
    for command in commands:
        result = oz_bridge(*command, "--config", "bad.yaml", cwd=tmp_path, env={"WARP_API_KEY": "k", **env})
        assert result.returncode == 2
        assert message in result.stderr
        assert "Traceback" not in result.stderr + result.stdout


def test_run_without_an_api_key_is_a_config_error(tmp_path: Path) -> None:
    result = oz_bridge("run", cwd=tmp_path)
    assert result.returncode == 2 and "WARP_API_KEY: required for run" in result.stderr


def test_check_config_summarises_a_valid_file_without_showing_secrets(tmp_path: Path) -> None:
    (tmp_path / "ok.yaml").write_text(
        "targets:\n  h: {type: webhook, url: 'https://hooks.example.com/T0/B0/sekrit-token', secret: '${S}'}\n"
        "routes:\n  - {name: all, events: ['*'], to: [h]}\n"
    )
    result = oz_bridge("check-config", "--config", "ok.yaml", cwd=tmp_path, env={"S": "whsec_c2VrcmV0"})
    assert result.returncode == 0, result.stderr
    assert "route all: * → h" in result.stdout
    assert "sekrit" not in result.stdout and "whsec_c2VrcmV0" not in result.stdout


def test_routes_test_prints_routes_targets_and_body_and_sends_nothing(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(
        "targets:\n  h: {type: webhook, url: 'http://127.0.0.1:9/never'}\n  c: {type: console}\n"
        "routes:\n  - {name: failures, events: [run.failed], to: [h]}\n"
        "  - {name: prs, events: ['artifact.*'], to: [c]}\n"
    )
    run = make_run(state="FAILED", status_message={"message": "boom"})
    (tmp_path / "run.json").write_text(json.dumps(run))
    result = oz_bridge(
        "routes", "test", "--event", "run.failed", "--run", "run.json", "--config", "r.yaml", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "route failures → h" in result.stdout
    assert "not taken:\n  route prs: run.failed is not one of its events (artifact.*)" in result.stdout
    body = result.stdout.split("would receive POST body:\n", 1)[1].rsplit("\n\n(nothing was sent)", 1)[0]
    assert json.loads(body)["run"] == run
    result = oz_bridge("routes", "test", "--event", "run.succeeded", "--config", "r.yaml", cwd=tmp_path)
    assert "no route matches" in result.stdout


def test_routes_test_shows_what_metadata_and_cost_matchers_decide(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(
        "targets:\n  c: {type: console}\n"
        "routes:\n  - {name: shop-team, events: ['run.*'], metadata: {team: shop}, to: [c]}\n"
        "  - {name: expensive, events: ['run.*'], min_cost_usd: 10, to: [c]}\n"
    )
    run = make_run(state="BLOCKED", metadata={"team": "web"}, request_usage={"inference_cost_usd": 12.5})
    (tmp_path / "run.json").write_text(json.dumps(run))
    result = oz_bridge(
        "routes", "test", "--event", "run.still_blocked", "--run", "run.json", "--config", "r.yaml", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "run.still_blocked matches 1 route(s):\n  route expensive → c" in result.stdout
    assert "route shop-team: metadata.team: 'web' does not match 'shop'" in result.stdout
    assert "'Title of run-1' (run run-1) BLOCKED, still waiting for input after " in result.stdout


def test_routes_test_for_digests_shows_each_digest_and_its_targets(tmp_path: Path) -> None:
    (tmp_path / "d.yaml").write_text(
        "targets:\n  c: {type: console}\n"
        "digests:\n  - {name: morning, cron: '0 9 * * 1-5', timezone: Europe/Paris, to: [c]}\n"
    )
    result = oz_bridge("routes", "test", "--event", "digest", "--config", "d.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "digest morning (0 9 * * 1-5, Europe/Paris), next at " in result.stdout
    assert "  by state: FAILED 1, SUCCEEDED 2" in result.stdout


def test_check_config_names_the_route_in_every_problem_about_it(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(
        "targets:\n  c: {type: console}\n"
        "routes:\n  - {name: all, events: ['*'], to: [c]}\n  - {name: ok, events: ['*'], to: [c]}\n"
        "  - {name: page-oncall, events: [run.faild], to: [pager]}\n"
    )
    result = oz_bridge("check-config", "--config", "bad.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert "routes[2] (page-oncall).events[0]: 'run.faild' is not an event type" in result.stderr
    assert "routes[2] (page-oncall).to[0]: unknown target 'pager'; defined targets: c" in result.stderr
    (tmp_path / "bad.yaml").write_text(
        "routes:\n  - {name: page-oncall, events: [], to: [c]}\n"
        "digests:\n  - {name: am, cron: '0 9 * * 1-5', timezone: Mars/Base, to: [c]}\n"
    )
    result = oz_bridge("check-config", "--config", "bad.yaml", cwd=tmp_path)
    assert "routes[0] (page-oncall).events: List should have at least 1 item" in result.stderr
    assert "digests[0] (am).timezone: 'Mars/Base' is not an IANA time zone name" in result.stderr


async def test_dlq_list_and_retry_and_db_upgrade(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'b.db'}"
    env = {"OZ_BRIDGE_DATABASE_URL": url}
    upgrade = oz_bridge("db", "upgrade", cwd=tmp_path, env=env)
    assert upgrade.returncode == 0 and "revision" in upgrade.stdout
    engine = create_engine(url)
    await migrate(engine)
    event = diff_run(None, make_run("run-dead"), START, NOW)[0]
    from datetime import UTC, datetime, timedelta

    async with engine.begin() as conn:
        await outbox.enqueue(conn, [(event, "audit")], datetime.now(UTC))
        [row] = await conn.run_sync(outbox.claim, "w", "audit", datetime.now(UTC), 1, timedelta(minutes=1))
        dead = outbox.Settlement(row, "dead", datetime.now(UTC), error="HTTP 410")
        await conn.run_sync(outbox.settle, "w", [dead], datetime.now(UTC))
    listing = oz_bridge("dlq", "list", cwd=tmp_path, env=env)
    assert "run-dead" in listing.stdout and "HTTP 410" in listing.stdout
    unknown = oz_bridge("dlq", "retry", "999", cwd=tmp_path, env=env)
    assert unknown.returncode == 1 and "no dead letter with id 999" in unknown.stderr
    retry = oz_bridge("dlq", "retry", str(row.id), cwd=tmp_path, env=env)
    assert "requeued 1" in retry.stdout
    assert "no dead letters" in oz_bridge("dlq", "list", cwd=tmp_path, env=env).stdout
    await engine.dispose()


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "No such file"), ("{bad", "not JSON"), ("[1]", "must be one run as a JSON object")],
)
def test_routes_test_with_an_unreadable_run_file_is_a_clear_error(
    tmp_path: Path, content: str | None, message: str
) -> None:
    if content is not None:
        (tmp_path / "run.json").write_text(content)
    result = oz_bridge("routes", "test", "--event", "run.failed", "--run", "run.json", cwd=tmp_path)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_store_commands_explain_an_unreachable_database(tmp_path: Path) -> None:
    env = {"OZ_BRIDGE_DATABASE_URL": "postgresql://nobody:sekrit@127.0.0.1:1/none"}
    result = oz_bridge("dlq", "list", cwd=tmp_path, env=env)
    assert result.returncode == 1 and "cannot reach the database" in result.stderr
    assert "Traceback" not in result.stderr and "sekrit" not in result.stderr


def test_check_config_hides_database_credentials(tmp_path: Path) -> None:
    env = {"OZ_BRIDGE_DATABASE_URL": "postgresql://app:sekrit@db.internal/oz?password=sekrit2"}
    result = oz_bridge("check-config", cwd=tmp_path, env=env)
    assert "database: postgresql://db.internal/oz" in result.stdout
    assert "sekrit" not in result.stdout


def test_demo_ignores_the_users_environment(tmp_path: Path) -> None:
    env = {
        "OZ_BRIDGE_DELIVERY__CONCURRENCY": "abc",
        "SLACK_BOT_TOKEN": "xoxb-real-looking",
        "SLACK_APP_TOKEN": "xapp-1",
    }
    result = oz_bridge("demo", "--speed", "4", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stdout + result.stderr


def test_demo_plays_the_scenario_and_exits_zero(tmp_path: Path) -> None:
    result = oz_bridge("demo", "--speed", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    for expected in (
        "run.failed",
        "run.blocked",
        "artifact.pull_request",
        "run.cancelled",
        "run.still_blocked            'Migrate billing cron'",  # reminded while it waited for the follow-up
        "run.cost_exceeded            'Plan search relevance overhaul'",
        "digest                       'daily': 6 run(s),",
        "  by state: CANCELLED 1, ERROR 1, FAILED 1, SUCCEEDED 3",
        "follow-up(s) reached the API",
    ):
        assert expected in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_demo_slack_starts_and_steers_a_run_from_slack_without_a_workspace(tmp_path: Path) -> None:
    env = {"SLACK_BOT_TOKEN": "xoxb-real-looking", "SLACK_SIGNING_SECRET": "real", "WARP_API_KEY": "wk-real"}
    result = oz_bridge("demo", "--slack", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for expected in (
        "#demo  ada: @oz-bridge /plan make the checkout page load in under a second",
        "#demo  oz-bridge reacts :eyes: to ada's message",
        "#demo  └ thread 1  oz-bridge posts the run's status message: ⏳ Queued:",
        "#demo  └ thread 1  oz-bridge updates its status message in place: 🏃 In progress:",
        "#demo  └ thread 1  oz-bridge: 📝 *Plan:* Faster checkout",
        "#demo  (only ada sees) Sent to the agent:",
        "#demo  └ thread 1  ada: keep the old /quote endpoint working",
        "#demo  (only ada sees) Retrying: a new run",
        "#demo  └ thread 1  oz-bridge: 🔀 *Pull request:* acme/widgets#",
        "#demo  └ thread 1  oz-bridge updates its status message in place: ✅ Succeeded:",
        "demo: 2 runs started from Slack, 2 follow-ups reached the API",
    ):
        assert any(line.startswith(expected) for line in lines), expected
    assert "thread 2" not in result.stdout  # everything happened in the one thread Ada started
    assert "Traceback" not in result.stdout + result.stderr


def test_run_that_cannot_listen_says_why_in_one_line(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {
            "WARP_API_KEY": "k",
            "OZ_BRIDGE_HOST": "127.0.0.1",
            "OZ_BRIDGE_PORT": str(port),
            "OZ_BRIDGE_DATABASE_URL": f"sqlite:///{tmp_path / 'b.db'}",
        }
        result = oz_bridge("run", cwd=tmp_path, env=env)
    assert result.returncode == 1
    assert "oz-bridge: cannot start:" in result.stderr and "address already in use" in result.stderr
    assert "Traceback" not in result.stderr
