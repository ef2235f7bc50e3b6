"""Presigned-style download links for handoff snapshot attachments.

Each listing mints new URLs (the API promises fresh, time-limited ones), and
the simulator serves them so a client can exercise the whole download path.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from .errors import SimError

__all__ = ["HandoffLinks"]


class HandoffLinks:
    def __init__(self, secret: bytes, ttl: timedelta = timedelta(minutes=15)) -> None:
        self._secret = secret
        self._ttl = ttl
        self._nonce = itertools.count(1)

    def _sign(self, run_id: str, attachment_id: str, expires: int) -> str:
        msg = f"{run_id}/{attachment_id}/{expires}".encode()
        return hmac.new(self._secret, msg, hashlib.sha256).hexdigest()[:32]

    def listing(
        self, run_id: str, attachments: Iterable[Mapping[str, Any]], now: datetime, origin: str
    ) -> list[dict[str, Any]]:
        """Attachment objects shaped like RunListHandoffAttachmentsResponse.attachments."""
        expires = int((now + self._ttl).timestamp())
        out = []
        for att in attachments:
            sig = self._sign(run_id, att["attachment_id"], expires)
            url = (
                f"{origin}/_sim/blobs/{run_id}/{att['attachment_id']}?expires={expires}&n={next(self._nonce)}&sig={sig}"
            )
            item = {k: att[k] for k in ("attachment_id", "filename", "mime_type") if att.get(k) is not None}
            out.append({**item, "download_url": url})
        return out

    def verify(self, run_id: str, attachment_id: str, expires: str, sig: str, now: datetime) -> None:
        """Raise 403 for a forged or expired link, like a storage bucket would."""
        if not expires.isdigit() or not hmac.compare_digest(sig, self._sign(run_id, attachment_id, int(expires))):
            raise SimError(403, "invalid download signature", error_code="not_authorized")
        if int(expires) < now.timestamp():
            raise SimError(403, "download URL expired", error_code="not_authorized")
