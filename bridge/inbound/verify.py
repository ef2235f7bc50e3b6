"""Request verification: Slack's signature over the raw body, within 5 minutes.

Runs before any parsing, so nothing an unsigned caller sends is ever interpreted.
"""

from __future__ import annotations

from collections.abc import Mapping

from slack_sdk.signature import Clock, SignatureVerifier


class RequestVerifier:
    """Wraps slack-sdk's verifier so that no input can make it raise."""

    def __init__(self, signing_secret: str, clock: Clock | None = None) -> None:
        # The SDK checks the 5-minute window and compares in constant time.
        self._verifier = SignatureVerifier(signing_secret, clock or Clock())

    def is_valid(self, body: bytes, headers: Mapping[str, str]) -> bool:
        normalised = {key.lower(): value for key, value in headers.items()}
        timestamp = normalised.get("x-slack-request-timestamp")
        signature = normalised.get("x-slack-signature")
        if timestamp is None or signature is None or not _is_plain_integer(timestamp) or not signature.isascii():
            # compare_digest refuses non-ASCII text with a TypeError; no Slack signature has any.
            return False
        try:
            return self._verifier.is_valid(body=body, timestamp=timestamp, signature=signature)
        except (UnicodeDecodeError, ValueError, OverflowError, TypeError):
            # Slack signs UTF-8 text; a body the SDK can't decode was not signed by Slack.
            return False


def _is_plain_integer(text: str) -> bool:
    # int() would also accept " 12", "1_000" or non-ASCII digits; Slack sends plain ASCII seconds.
    return 0 < len(text) <= 12 and text.isascii() and text.isdigit()
