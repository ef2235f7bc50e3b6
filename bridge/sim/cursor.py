"""Keyset cursors: opaque, tamper-evident tokens bound to one query.

A cursor holds the last returned item's (sort value, run_id) and a fingerprint
of the filters and sort, so a cursor replayed with different filters is a 400
instead of silently wrong pages.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json

from .listing import ListQuery, Position, SortValue, bad_request

__all__ = ["CursorCodec"]


class CursorCodec:
    """Opaque, tamper-evident base64url cursors bound to one query identity."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def encode(self, position: Position, query: ListQuery) -> str:
        payload = json.dumps(
            {"v": 1, "k": position[0], "id": position[1], "q": query.identity()}, separators=(",", ":")
        ).encode()
        mac = hmac.new(self._secret, payload, hashlib.sha256).digest()[:8]
        return base64.urlsafe_b64encode(mac + payload).decode().rstrip("=")

    def decode(self, token: str, query: ListQuery) -> Position:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            mac, payload = raw[:8], raw[8:]
            expected = hmac.new(self._secret, payload, hashlib.sha256).digest()[:8]
            if not hmac.compare_digest(mac, expected):
                raise ValueError("bad signature")
            data = json.loads(payload)
            key, run_id = data["k"], data["id"]
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise bad_request("invalid cursor") from None
        if data.get("q") != query.identity():
            raise bad_request("cursor does not match this query's filters or sort; restart without a cursor")
        value = _sort_value(key, query.sort_by)
        if value is None or not isinstance(run_id, str):
            raise bad_request("invalid cursor")
        return value, run_id


def _sort_value(key: object, sort_by: str) -> SortValue | None:
    """The decoded key if its JSON type fits ``sort_by``, else None."""
    if sort_by == "agent" and isinstance(key, list) and len(key) == 2:
        return (int(key[0]), str(key[1]))
    if sort_by in ("updated_at", "created_at") and isinstance(key, int) and not isinstance(key, bool):
        return key
    if sort_by == "title" and isinstance(key, str):
        return key
    return None
