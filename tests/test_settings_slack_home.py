"""The Slack-home settings (slack.start, slack.children, slack.plan_approval, @creator targets) and their errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.config_checks import warnings
from bridge.route_preview import preview
from bridge.settings import ConfigError, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "OZ_BRIDGE_CONFIG"):
        monkeypatch.delenv(name, raising=False)


def load(tmp_path: Path, text: str, **kwargs: object) -> object:
    path = tmp_path / "bridge.yaml"
    path.write_text(text)
    return load_settings(str(path), **kwargs)  # type: ignore[arg-type]


def test_the_contract_example_loads_with_its_defaults(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        "slack:\n  start:\n    channels: [C0START001]\n    config: {name: fixer, model_id: m-1}\n"
        "    on_behalf_of: true\n",
    )
    slack = settings.slack  # type: ignore[attr-defined]
    assert slack.start.channels == ["C0START001"] and slack.start.config == {"name": "fixer", "model_id": "m-1"}
    assert slack.start.on_behalf_of is True
    assert slack.children == "thread" and slack.plan_approval == "The plan is approved. Go ahead."


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("slack: {start: {channels: ['#general']}}", "slack.start.channels: '#general': not a Slack channel id"),
        ("slack: {start: {channels: ['*', C0START001]}}", 'slack.start.channels: "*" (any channel the bot is in)'),
        ("slack: {start: {config: {nmae: x}}}", "slack.start.config: unknown agent config key nmae; allowed:"),
        ("slack: {start: {config: {idle_timeout_minutes: soon}}}", "slack.start.config: not a valid agent config"),
        ("slack: {children: nested}", "slack.children: Input should be 'thread' or 'separate'"),
        ("slack: {plan_approval: ''}", "slack.plan_approval: String should have at least 1 character"),
        ("targets: {me: {type: slack, channel: '@someone'}}", "targets.me.channel: '@someone': the only @ channel"),
    ],
)
def test_bad_slack_home_settings_name_the_key(tmp_path: Path, yaml_text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, yaml_text, check=False)
    assert any(line.startswith(expected) for line in caught.value.problems), caught.value.problems


def test_target_names_starting_with_at_are_reserved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, "targets: {'@slack-thread': {type: slack, channel: C0ALERTS01}}\n")
    assert any("reserved for built-in targets" in line for line in caught.value.problems)


def test_a_creator_target_is_valid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    settings = load(
        tmp_path, "targets: {mine: {type: slack, channel: '@creator'}}\nroutes: [{name: m, events: ['*'], to: [mine]}]"
    )
    assert settings.targets["mine"].channel == "@creator"  # type: ignore[attr-defined]


def test_start_channels_without_inbound_credentials_are_warned_about(tmp_path: Path) -> None:
    settings = load(tmp_path, "slack: {start: {channels: ['*']}}\n")
    assert any(note.startswith("slack.start.channels:") for note in warnings(settings))  # type: ignore[arg-type]


def test_routes_test_shows_the_built_in_thread_target(tmp_path: Path) -> None:
    settings = load(tmp_path, "")
    run = {"state": "FAILED", "metadata": {"slack_channel": "C0START001", "slack_thread_ts": "1700000000.000100"}}
    shown = preview(settings, "run.failed", run)  # type: ignore[arg-type]
    assert "built-in @slack-thread" in shown and "C0START001" in shown
