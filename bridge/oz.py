"""The Oz API, through the official SDK only: client construction and page iteration."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from datetime import datetime
from typing import Any

from oz_agent_sdk import AsyncOzAPI, DefaultAioHttpClient

from bridge.diff import parse_time
from bridge.events import JSONDict
from bridge.settings import OzSettings


class MalformedRun(ValueError):
    """The API answered, but a run in it lacks what the bridge needs to diff it."""


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


def checked_run(item: Any) -> JSONDict:
    """The run as the API returned it, as JSON, after checking what diffing needs."""
    run: JSONDict = item.to_dict(mode="json") if hasattr(item, "to_dict") else dict(item)
    for name in ("run_id", "state", "updated_at", "created_at"):
        if not isinstance(run.get(name), str) or not run[name]:
            raise MalformedRun(f"run {run.get('run_id')!r} has no valid {name}")
    try:
        parse_time(run["updated_at"])
        parse_time(run["created_at"])
    except ValueError as exc:
        raise MalformedRun(f"run {run['run_id']!r}: {exc}") from None
    if not isinstance(run.get("artifacts") or [], list):
        raise MalformedRun(f"run {run['run_id']!r}: artifacts is not a list")
    return run


def readable_runs(items: list[Any], on_malformed: Callable[[MalformedRun], None]) -> list[JSONDict]:
    """The page's runs that can be diffed; each one that can't is reported and left out,
    so one broken run never holds every other notification back."""
    runs: list[JSONDict] = []
    for item in items:
        try:
            runs.append(checked_run(item))
        except MalformedRun as exc:
            on_malformed(exc)
    return runs


async def run_pages(
    client: AsyncOzAPI,
    updated_after: datetime,
    page_size: int,
    filters: Mapping[str, Any],
    on_request: Callable[[], None] | None = None,
    on_malformed: Callable[[MalformedRun], None] = lambda _exc: None,
) -> AsyncIterator[list[JSONDict]]:
    """Pages of runs updated after ``updated_after``, oldest change first, to the end."""
    try:
        if on_request:
            on_request()
        page = await client.agent.runs.list(
            **filters,
            sort_by="updated_at",
            sort_order="asc",
            limit=page_size,
            updated_after=updated_after,
        )
        while True:
            if not isinstance(getattr(page, "runs", None), list):
                raise MalformedRun("the runs list is missing from the API's answer")
            yield readable_runs(page.runs, on_malformed)
            if not page.has_next_page():
                return
            if on_request:
                on_request()
            page = await page.get_next_page()
    except (ValueError, AttributeError, TypeError, KeyError) as exc:
        if isinstance(exc, MalformedRun):
            raise
        # The SDK parses leniently: a non-JSON or truncated body surfaces as a plain Python error.
        raise MalformedRun(f"unreadable answer from GET /agent/runs ({type(exc).__name__}: {exc})") from None
