"""Signed webhooks: the contract's JSON body, Standard Webhooks headers."""

from __future__ import annotations

import json
from collections import OrderedDict
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import aiohttp
from standardwebhooks import Webhook

from bridge.events import Event
from bridge.notifiers.base import Outcome
from bridge.settings import WebhookTarget

USER_AGENT = "oz-bridge/0.1 (+https://github.com/oz-bridge/oz-bridge)"
RETRYABLE_STATUSES = frozenset({408, 409, 425, 429})


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds from a ``Retry-After`` header given as seconds or as an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - now).total_seconds())


def classify(status: int, retry_after: float | None) -> Outcome:
    if 200 <= status < 300:
        return Outcome.done(f"HTTP {status}")
    if status in RETRYABLE_STATUSES or status >= 500:
        return Outcome.retry(f"HTTP {status}", retry_after)
    return Outcome.permanent(f"HTTP {status}")


def signed_headers(secret: str | None, event_id: str, body: str, now: datetime) -> dict[str, str]:
    headers = {"content-type": "application/json", "user-agent": USER_AGENT}
    if secret is None:
        return headers
    headers["webhook-id"] = event_id
    headers["webhook-timestamp"] = str(int(now.timestamp()))
    headers["webhook-signature"] = Webhook(secret).sign(event_id, now, body)
    return headers


def _dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class RunText:
    """The JSON text of recently sent runs, by identity.

    A run's many events (thousands of artifacts, say) share one run object and go out
    one after another; serialising that run again for each would cost more than the
    send. Entries hold the run itself, so an id is never mistaken for another object's.
    """

    def __init__(self, max_chars: int = 8 * 1024 * 1024, max_entries: int = 64) -> None:
        self._max_chars = max_chars
        self._max_entries = max_entries
        self._chars = 0
        self._entries: OrderedDict[int, tuple[object, str]] = OrderedDict()

    def of(self, run: object) -> str:
        entry = self._entries.get(id(run))
        if entry is not None and entry[0] is run:
            self._entries.move_to_end(id(run))
            return entry[1]
        text = _dumps(run)
        self._entries[id(run)] = (run, text)
        self._chars += len(text)
        while len(self._entries) > 1 and (self._chars > self._max_chars or len(self._entries) > self._max_entries):
            _, (_, evicted) = self._entries.popitem(last=False)
            self._chars -= len(evicted)
        return text


def encode_body(event: Event, runs: RunText) -> str:
    """The contract's body, exactly ``json.dumps(event.to_payload())`` (compact), with the
    run's text taken from ``runs``."""
    parts = []
    for key, value in event.to_payload().items():
        text = runs.of(value) if key == "run" and value is not None else _dumps(value)
        parts.append(f"{_dumps(key)}:{text}")
    return "{" + ",".join(parts) + "}"


class WebhookNotifier:
    def __init__(self, target: WebhookTarget, session: aiohttp.ClientSession) -> None:
        self._url = str(target.url)
        self._secret = target.secret.get_secret_value() if target.secret else None
        self._extra_headers = dict(target.headers)
        self._timeout = aiohttp.ClientTimeout(total=target.timeout)
        self._session = session
        self._runs = RunText()

    async def send(self, event: Event) -> Outcome:
        body = encode_body(event, self._runs)
        # Signed afresh on every attempt: a new timestamp, the same webhook-id.
        now = datetime.now(UTC)
        try:
            headers = {**self._extra_headers, **signed_headers(self._secret, event.id, body, now)}
        except Exception as exc:  # the target's own config is wrong: retrying cannot help
            return Outcome.permanent(f"cannot sign ({type(exc).__name__})")
        try:
            async with self._session.post(
                self._url,
                data=body.encode(),
                headers=headers,
                timeout=self._timeout,
                allow_redirects=False,
            ) as response:
                await response.read()
                return classify(response.status, parse_retry_after(response.headers.get("Retry-After"), now))
        except TimeoutError:
            return Outcome.retry("timed out")
        except aiohttp.ClientError as exc:
            # The exception text may carry the URL (and any token in it): say only its kind.
            return Outcome.retry(f"connection error ({type(exc).__name__})")

    async def close(self) -> None:
        """The session is shared and closed by the composition root."""
