"""The one way a Slack stand-in method fails: ``{"ok": false, "error": code}``, with HTTP 200."""

from __future__ import annotations


class SlackError(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code
