"""Signature and timestamp checks, before anything else looks at a request."""

from __future__ import annotations

import time

from slack_sdk.signature import SignatureVerifier

from bridge.inbound.verify import RequestVerifier

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


def signed_headers(body: bytes, timestamp: int | None = None, secret: str = SECRET) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    assert signature is not None
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature}


def test_a_correctly_signed_fresh_request_is_valid() -> None:
    assert RequestVerifier(SECRET).is_valid(b'{"a": 1}', signed_headers(b'{"a": 1}'))


def test_a_wrong_secret_a_changed_body_or_an_old_timestamp_is_not() -> None:
    verifier = RequestVerifier(SECRET)
    assert not verifier.is_valid(b"{}", signed_headers(b"{}", secret="other-secret"))
    assert not verifier.is_valid(b'{"a": 2}', signed_headers(b'{"a": 1}'))
    assert not verifier.is_valid(b"{}", signed_headers(b"{}", timestamp=int(time.time()) - 301))
    assert not verifier.is_valid(b"{}", signed_headers(b"{}", timestamp=int(time.time()) + 301))


def test_missing_or_garbled_headers_are_not_valid_and_never_raise() -> None:
    verifier = RequestVerifier(SECRET)
    good = signed_headers(b"{}")
    assert not verifier.is_valid(b"{}", {})
    assert not verifier.is_valid(b"{}", {**good, "X-Slack-Request-Timestamp": "soon"})
    assert not verifier.is_valid(b"{}", {**good, "X-Slack-Request-Timestamp": "9" * 400})
    assert not verifier.is_valid(b"{}", {**good, "X-Slack-Request-Timestamp": "١٢٣"})
    assert not verifier.is_valid(b"{}", {**good, "X-Slack-Signature": "v0=\u00e9"})


def test_a_body_that_is_not_utf8_is_not_valid_even_when_signed() -> None:
    import hashlib
    import hmac

    body = b"\xff\xfe\x00garbage"
    ts = str(int(time.time()))
    digest = hmac.new(SECRET.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
    headers = {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}
    assert not RequestVerifier(SECRET).is_valid(body, headers)
