"""The Slack app manifest asks for what the bridge's Slack features call."""

from __future__ import annotations

from pathlib import Path

import yaml

MANIFEST = Path(__file__).parents[1] / "config" / "slack-app-manifest.yaml"


def test_the_manifest_has_the_scopes_and_events_of_every_feature() -> None:
    manifest = yaml.safe_load(MANIFEST.read_text())
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    # threads and buttons; starting runs; DMs to creators; screenshots and attached images
    assert {"chat:write", "reactions:write", "channels:history", "groups:history", "app_mentions:read"} <= scopes
    assert {"users:read", "users:read.email", "im:write", "im:history", "files:write", "files:read"} <= scopes
    events = set(manifest["settings"]["event_subscriptions"]["bot_events"])
    assert {"message.channels", "message.groups", "app_mention", "message.im"} <= events
    assert manifest["features"]["app_home"]["messages_tab_enabled"] is True
