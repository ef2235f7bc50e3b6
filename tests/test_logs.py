"""Secrets never reach the logs, whoever logs them."""

from __future__ import annotations

import io
import json
import logging
from datetime import UTC, datetime
from typing import Any

import pytest

from bridge.logs import REDACTED, Redactor, configure, get_logger, redactor

API_KEY = "wk-0123456789abcdef"
BOT_TOKEN = "xoxb-1111-2222-abcdefABCDEF"


def test_registered_secrets_and_credential_shapes_are_redacted_everywhere() -> None:
    stream = io.StringIO()
    configure("json", "debug", stream=stream)
    redactor.register([API_KEY])
    log = get_logger("test")
    log.info("calling the API", url=f"https://x/?key={API_KEY}", headers={"Authorization": f"Bearer {API_KEY}"})
    log.warning("slack said no", detail=f"token {BOT_TOKEN} revoked", api_key=API_KEY)
    logging.getLogger("some.library").error("failed with %s", f"whsec_abcdefgh and {API_KEY}")
    try:
        raise RuntimeError(f"boom {API_KEY}")
    except RuntimeError:
        log.exception("crashed")
    text = stream.getvalue()
    assert API_KEY not in text and BOT_TOKEN not in text and "whsec_abcdefgh" not in text
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines[0]["headers"]["Authorization"] == REDACTED
    assert lines[1]["api_key"] == REDACTED
    assert "RuntimeError" in lines[3]["exception"]


def test_console_format_scrubs_tracebacks_too() -> None:
    stream = io.StringIO()
    configure("console", "debug", stream=stream)
    redactor.register([API_KEY])
    try:
        raise ValueError(f"boom {API_KEY}")
    except ValueError:
        get_logger("test").exception("crashed")
    text = stream.getvalue()
    assert "ValueError" in text and API_KEY not in text


class CountingRedactor:
    """Counts how often the redaction processor runs, around the real one."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        real = Redactor.__call__

        def counting(redactor_self: Redactor, *args: Any) -> Any:
            self.calls += 1
            return real(redactor_self, *args)

        monkeypatch.setattr(Redactor, "__call__", counting)


def test_a_line_below_the_level_runs_no_processor(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    configure("json", "info", stream=stream)
    counter = CountingRedactor(monkeypatch)
    log = get_logger("test.levels")
    log.debug("not wanted", detail="x" * 100)
    assert counter.calls == 0 and stream.getvalue() == ""
    log.info("wanted")
    assert counter.calls == 1 and json.loads(stream.getvalue())["event"] == "wanted"


def test_the_level_can_change_after_a_logger_was_first_used() -> None:
    stream = io.StringIO()
    log = get_logger("test.relevel")
    configure("json", "warning", stream=stream)
    log.info("dropped")
    configure("json", "debug", stream=stream)
    log.debug("kept")
    assert [json.loads(line)["event"] for line in stream.getvalue().splitlines()] == ["kept"]


def test_datetimes_are_logged_as_rfc3339_strings() -> None:
    stream = io.StringIO()
    configure("json", "info", stream=stream)
    get_logger("test").warning("will retry", retry_at=datetime(2026, 1, 2, 3, 4, 5, 600000, tzinfo=UTC))
    assert json.loads(stream.getvalue())["retry_at"] == "2026-01-02T03:04:05.600000Z"
