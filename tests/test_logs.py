"""Secrets never reach the logs, whoever logs them."""

from __future__ import annotations

import io
import json
import logging

from bridge.logs import REDACTED, configure, get_logger, redactor

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
