"""Configuration: precedence, ${VAR} expansion, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.settings import ConfigError, load_settings, parse_duration


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "bridge.yaml"
    path.write_text(text)
    return str(path)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "WARP_API_KEY",
        "SLACK_BOT_TOKEN",
        "OZ_BRIDGE_POLL_INTERVAL",
        "OZ_BRIDGE_POLL__INTERVAL",
        "OZ_BRIDGE_CONFIG",
    ):
        monkeypatch.delenv(name, raising=False)


def test_the_example_config_is_valid_offline_with_no_environment() -> None:
    settings = load_settings(str(Path(__file__).parents[1] / "config" / "bridge.yaml"))
    assert settings.routes and settings.targets


def test_precedence_is_flag_then_env_then_yaml_then_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "poll:\n  interval: 20\n  lookback: 45\n")
    assert load_settings(path).poll.interval == 20
    monkeypatch.setenv("OZ_BRIDGE_POLL__INTERVAL", "7")
    settings = load_settings(path)
    assert (settings.poll.interval, settings.poll.lookback, settings.poll.sweep) == (7, 45, 15)
    assert load_settings(path, poll={"interval": 3}).poll.interval == 3


def test_poll_interval_shorthand_and_sdk_variables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OZ_BRIDGE_POLL_INTERVAL", "9")
    monkeypatch.setenv("WARP_API_KEY", "wk-secret")
    settings = load_settings(write(tmp_path, ""))
    assert settings.poll.interval == 9
    assert settings.oz.api_key is not None and settings.oz.api_key.get_secret_value() == "wk-secret"
    assert "wk-secret" not in repr(settings)


def test_config_flag_wins_over_the_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OZ_BRIDGE_CONFIG", write(tmp_path, "poll: {interval: 99}"))
    other = tmp_path / "other.yaml"
    other.write_text("poll: {interval: 11}")
    assert load_settings(str(other)).poll.interval == 11
    assert load_settings().poll.interval == 99


def test_env_vars_in_yaml_are_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_URL", "https://hooks.example.com/x")
    settings = load_settings(write(tmp_path, "targets:\n  t: {type: webhook, url: '${HOOK_URL}'}\n"))
    assert str(settings.targets["t"].url) == "https://hooks.example.com/x"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        (
            "targets:\n  t: {type: webhook, url: '${NOPE_MISSING}'}\n",
            "targets.t.url: environment variable NOPE_MISSING is not set",
        ),
        ("poll: {interval: soon}", "poll.interval: 'soon' is not a duration"),
        ("poll: {start: yesterday}", "poll.start: 'yesterday' is not 'now', an RFC3339 time or a duration"),
        ("poll: {filters: {cursor: x}}", "poll.filters: cursor: set by the poller itself"),
        ("targets:\n  t: {type: email}\n", "targets.t: Input tag 'email'"),
        ("targets:\n  t: {type: slack, chanel: C1}\n", "targets.t.chanel: unknown key"),
        ("pol: {}", "pol: unknown key"),
        ("routes:\n  - {name: r, events: [], to: [t]}\n", "routes[0] (r).events: List should have at least 1 item"),
        ("log_level: loud", "log_level: Input should be 'debug', 'info', 'warning' or 'error'"),
        ("poll: [1, 2", "bridge.yaml: line"),
        ("- just a list", "the top level must be a mapping"),
    ],
)
def test_invalid_config_names_the_key_and_what_is_allowed(tmp_path: Path, yaml_text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, yaml_text), check=False)
    assert any(expected in problem for problem in caught.value.problems), caught.value.problems


def test_cross_references_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(
            write(
                tmp_path,
                "targets:\n  a: {type: slack, channel: C1}\n  w: {type: webhook, url: '${UNSET_HOOK}'}\n"
                "routes:\n  - {name: r, events: [run.faild], to: [a, b]}\n  - {name: r, events: ['*'], to: [a]}\n",
            )
        )
    found = caught.value.problems
    assert "targets.w.url: environment variable UNSET_HOOK is not set (used as ${UNSET_HOOK})" in found
    assert any("routes[0] (r).events[0]: 'run.faild' is not an event type" in p for p in found)
    assert any("routes[0] (r).to[1]: unknown target 'b'; defined targets: a" in p for p in found)
    assert any("routes[1] (r).name: 'r' is used by an earlier route" in p for p in found)
    assert any("targets.a: a slack target needs SLACK_BOT_TOKEN" in p for p in found)


def test_missing_explicit_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(str(tmp_path / "absent.yaml"))


@pytest.mark.parametrize(
    ("text", "seconds"), [(15, 15.0), ("90s", 90.0), ("5m", 300.0), ("24h", 86400.0), ("500ms", 0.5)]
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"poll:\n  interval: 15 # \xff\xfe\n", "not UTF-8 text"),
        (b"a: &a [*a]\nroutes: *a\n", "an alias refers to itself"),
    ],
)
def test_unreadable_yaml_is_a_config_error(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "bridge.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=expected):
        load_settings(str(path))


def test_list_values_in_the_environment_must_be_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OZ_BRIDGE_SLACK__ALLOWED_USERS", "U1,U2")
    with pytest.raises(ConfigError, match="must be JSON"):
        load_settings(write(tmp_path, ""))
    monkeypatch.setenv("OZ_BRIDGE_SLACK__ALLOWED_USERS", '["U1", "U2"]')
    assert load_settings(write(tmp_path, "")).slack.allowed_users == ["U1", "U2"]


@pytest.mark.parametrize("secret", ["whsec_", "whsec_!!!!", "not-whsec"])
def test_a_webhook_secret_that_cannot_sign_is_refused(tmp_path: Path, secret: str) -> None:
    text = f"targets:\n  w: {{type: webhook, url: 'https://x/y', secret: '{secret}'}}\n"
    with pytest.raises(ConfigError, match=r"targets\.w\.secret: must be a Standard Webhooks secret"):
        load_settings(write(tmp_path, text), check=False)


def test_a_missing_variable_is_reported_once_not_again_for_its_stand_in(tmp_path: Path) -> None:
    text = "targets:\n  c: {type: console}\nroutes:\n  - {name: r, events: ['*'], to: ['${NOPE_TARGET}']}\n"
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text))
    assert caught.value.problems == [
        "routes[0] (r).to[0]: environment variable NOPE_TARGET is not set (used as ${NOPE_TARGET})"
    ]


def test_slack_api_url_always_ends_with_a_slash_and_log_format_ignores_case(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLACK_API_URL", "http://127.0.0.1:9/api")
    monkeypatch.setenv("OZ_BRIDGE_LOG_FORMAT", "JSON")
    settings = load_settings(write(tmp_path, ""))
    assert (settings.slack.api_url, settings.log_format) == ("http://127.0.0.1:9/api/", "json")


def test_reminders_budgets_and_digests_default_to_off(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, ""))
    assert (settings.reminders.blocked_every, settings.reminders.stuck_after, settings.budgets.run_usd) == (0, 0, 0)
    assert settings.digests == []


def test_reminder_durations_and_digests_are_read(tmp_path: Path) -> None:
    text = (
        "reminders: {blocked_every: 30m, stuck_after: 2h}\nbudgets: {run_usd: 2.5}\n"
        "targets:\n  c: {type: console}\n"
        "digests:\n  - {name: weekday-morning, cron: '0 9 * * 1-5', timezone: Europe/Paris, window: 24h, to: [c]}\n"
    )
    settings = load_settings(write(tmp_path, text))
    assert (settings.reminders.blocked_every, settings.reminders.stuck_after, settings.budgets.run_usd) == (
        1800,
        7200,
        2.5,
    )
    [digest] = settings.digests
    assert (digest.name, digest.timezone, digest.window, digest.to) == ("weekday-morning", "Europe/Paris", 86400, ["c"])


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("reminders: {blocked_every: often}", "reminders.blocked_every: 'often' is not a duration"),
        ("reminders: {stuck_after: -5}", "reminders.stuck_after: Input should be greater than or equal to 0"),
        ("reminders: {blocked_evry: 5m}", "reminders.blocked_evry: unknown key"),
        ("budgets: {run_usd: -1}", "budgets.run_usd: Input should be greater than or equal to 0"),
        ("budgets: {run_usd: .inf}", "budgets.run_usd: Input should be a finite number"),
        (
            "digests:\n  - {name: am, cron: '0 9 * *', to: [c]}\n",
            "digests[0] (am).cron: '0 9 * *' is not a five-field cron expression",
        ),
        (
            "digests:\n  - {name: am, cron: '0 25 * * *', to: [c]}\n",
            "digests[0] (am).cron: '0 25 * * *' is not a valid cron expression",
        ),
        (
            "digests:\n  - {name: am, cron: '0 9 * * *', timezone: Europe/Pariss, to: [c]}\n",
            "digests[0] (am).timezone: 'Europe/Pariss' is not an IANA time zone name",
        ),
        ("digests:\n  - {name: am, cron: '0 9 * * *', window: 0, to: [c]}\n", "digests[0] (am).window: Input should"),
        ("digests:\n  - {name: 'a b', cron: '0 9 * * *', to: [c]}\n", "digests[0] (a b).name: String should match"),
        ("digests:\n  - {cron: '0 9 * * *', to: [c]}\n", "digests[0].name: required key is missing"),
        (
            "routes:\n  - {name: r, events: ['*'], to: [t], metadata: {'Team Name': x}}\n",
            "routes[0] (r).metadata: 'Team Name' is not a run metadata key",
        ),
        (
            "routes:\n  - {name: r, events: ['*'], to: [t], metadata: {team: '[web'}}\n",
            "routes[0] (r).metadata: team: '[web' has an unbalanced [ ]",
        ),
        (
            "routes:\n  - {name: page-oncall, events: ['*'], to: [t], min_cost_usd: -2}\n",
            "routes[0] (page-oncall).min_cost_usd: Input should be greater than or equal to 0",
        ),
    ],
)
def test_new_keys_are_validated_and_name_their_route_or_digest(tmp_path: Path, yaml_text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, yaml_text), check=False)
    assert any(expected in problem for problem in caught.value.problems), caught.value.problems


def test_digest_targets_and_names_are_cross_checked(tmp_path: Path) -> None:
    text = (
        "targets:\n  c: {type: console}\nroutes:\n  - {name: all, events: ['*'], to: [c]}\n"
        "  - {name: page-oncall, events: ['run.failed'], to: [pager]}\n"
        "digests:\n  - {name: am, cron: '0 9 * * *', to: [c, slackk]}\n  - {name: am, cron: '@daily', to: [c]}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text))
    assert caught.value.problems == [
        "routes[1] (page-oncall).to[0]: unknown target 'pager'; defined targets: c",
        "digests[0] (am).to[1]: unknown target 'slackk'; defined targets: c",
        "digests[1] (am).name: 'am' is used by an earlier digest; digest names must be unique",
    ]


def test_a_digest_sent_to_run_creators_is_an_error_naming_the_digest_and_the_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    text = (
        "targets:\n  mine: {type: slack, channel: '@creator'}\n  team: {type: slack, channel: '#team'}\n"
        "routes:\n  - {name: mine, events: ['*'], to: [mine]}\n"  # a route may DM a run's creator
        "digests:\n  - {name: mornings, cron: '0 9 * * *', to: [team, mine]}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text))
    assert caught.value.problems == [
        "digests[0] (mornings).to[1]: target 'mine' is a DM to each run's creator (channel: \"@creator\"), "
        "but a digest has no creator; send it to a channel"
    ]


def test_route_names_come_from_the_environment_when_routes_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OZ_BRIDGE_ROUTES", '[{"name": "from-env", "events": [], "to": ["c"]}]')
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, "routes:\n  - {name: from-yaml, events: ['*'], to: [c]}\n"), check=False)
    assert any(p.startswith("routes[0] (from-env).events:") for p in caught.value.problems), caught.value.problems


def test_a_time_event_switched_on_but_routed_nowhere_is_a_warning(tmp_path: Path) -> None:
    from bridge.config_checks import warnings

    text = (
        "reminders: {blocked_every: 30m, stuck_after: 2h}\n"
        "targets:\n  c: {type: console}\nroutes:\n  - {name: r, events: [run.failed, 'run.stu*'], to: [c]}\n"
    )
    notes = warnings(load_settings(write(tmp_path, text)))
    assert "reminders.blocked_every: set, but no route's events match run.still_blocked, so it is told nowhere" in notes
    assert not any(note.startswith("reminders.stuck_after") for note in notes)
