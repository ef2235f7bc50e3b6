"""The Oz API, through the official SDK only: the client, and pages of ``GET /agent/runs``.

Pages are read through the SDK's raw response and parsed from JSON once: the
SDK's model parse and ``to_dict`` per run cost several times the paging
itself, and the bridge wants the run exactly as the API sent it anyway. The
answer is not trusted: a body that is not a page of runs, or a cursor that
leads back to a page already read, stops the read with a reason.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from oz_agent_sdk import AsyncOzAPI, DefaultAioHttpClient

from bridge.api_time import ApiClock
from bridge.settings import OzSettings


class UnreadableAnswer(ValueError):
    """The API answered 2xx with something that is not a page of runs."""


class CursorRepeated(RuntimeError):
    """A page named, as the next one, a page this read had already asked for."""

    def __init__(self, pages: int) -> None:
        super().__init__(f"the Oz API repeated a page cursor after {pages} pages; paging stopped there")
        self.pages = pages


def build_client(settings: OzSettings) -> AsyncOzAPI:
    # The SDK's own retries would repeat follow-ups and hide poll failures from
    # our backoff and metrics, so every retry decision stays in the bridge.
    return AsyncOzAPI(
        api_key=settings.api_key.get_secret_value() if settings.api_key else None,
        base_url=settings.base_url,
        http_client=DefaultAioHttpClient(),
        max_retries=0,
        timeout=settings.timeout,
    )


@dataclass(frozen=True)
class RunsPage:
    entries: list[Any]  # the ``runs`` array as sent: each entry still to be checked
    next_cursor: str | None
    answered_at: datetime  # the API's time when it answered (from its Date header)
    size: int  # bytes of the body


def parse_page(raw: bytes, answered_at: datetime) -> RunsPage:
    """One answer of ``GET /agent/runs``, or ``UnreadableAnswer`` saying what is wrong with it."""
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise UnreadableAnswer(f"not JSON ({exc.__class__.__name__}: {exc}; {len(raw)} bytes)") from None
    if not isinstance(body, dict) or not isinstance(body.get("runs"), list):
        keys = sorted(body)[:5] if isinstance(body, dict) else type(body).__name__
        raise UnreadableAnswer(f"no runs list in the answer (got {keys})")
    info = body.get("page_info")
    info = info if isinstance(info, dict) else {}
    cursor = info.get("next_cursor")
    if cursor is not None and not isinstance(cursor, str):
        raise UnreadableAnswer(f"page_info.next_cursor is a {type(cursor).__name__}, not a string")
    # As the SDK pages: has_next_page false stops; otherwise a cursor leads on.
    more = info.get("has_next_page") is not False and bool(cursor)
    return RunsPage(body["runs"], cursor if more else None, answered_at, len(raw))


async def fetch_page(client: AsyncOzAPI, params: Mapping[str, Any], clock: ApiClock) -> RunsPage:
    sent_at = clock.local_now()
    response = await client.agent.runs.with_raw_response.list(**params)
    raw = await response.read()
    answered_at = clock.observe(response.headers.get("date"), sent_at, clock.local_now())
    return parse_page(raw, answered_at)


async def pages(
    client: AsyncOzAPI,
    params: Mapping[str, Any],
    clock: ApiClock,
    max_pages: int,
    on_request: Callable[[], None] = lambda: None,
) -> AsyncIterator[RunsPage]:
    """Pages of one listing, following cursors; at most ``max_pages``, never one cursor twice."""
    asked: set[str] = set()
    cursor: str | None = None
    for number in range(1, max_pages + 1):
        on_request()
        page = await fetch_page(client, {**params, "cursor": cursor} if cursor else params, clock)
        yield page
        if page.next_cursor is None:
            return
        if page.next_cursor in asked:
            raise CursorRepeated(number)
        asked.add(page.next_cursor)
        cursor = page.next_cursor
