"""Plans and screenshots in the run's thread: fetched through the Oz SDK, shown in full in Slack.

``GET /agent/artifacts/{uid}`` gives a plan's markdown or a screenshot's signed
download URL. A plan becomes a message with ``Approve plan``; a screenshot is
uploaded with slack-sdk's ``files_upload_v2`` (Slack's external upload) so it
shows inline, or, when Slack will not take it, linked. What a retry may fix
(timeouts, 5xx, rate limits) is retried; what it cannot falls back to words.
"""

from __future__ import annotations

from datetime import UTC, datetime

import aiohttp
from oz_agent_sdk import APIConnectionError, APIStatusError, AsyncOzAPI
from oz_agent_sdk.types.agent_get_artifact_response import PlanArtifactResponse, ScreenshotArtifactResponse
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.models.blocks import Block, MarkdownTextObject, SectionBlock
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.events import Event, JSONDict
from bridge.logs import get_logger
from bridge.metrics import Metrics
from bridge.notifiers.base import Outcome
from bridge.notifiers.slack_errors import error_code, is_transient
from bridge.notifiers.slack_messages import clean, escape, link, truncate
from bridge.notifiers.slack_plans import plan_message
from bridge.store import slack_plans
from bridge.store.slack_placements import SlackPlacement
from bridge.store.slack_plans import PlanMessage

log = get_logger("bridge.notifiers.slack_artifacts")
MAX_SCREENSHOT_BYTES = 20 * 1024 * 1024
DOWNLOAD_TIMEOUT = aiohttp.ClientTimeout(total=60)
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp"}


class Unavailable(Exception):
    """The artifact cannot be fetched for good (gone, not allowed): say less, don't retry."""


class TryLater(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def artifact_uid(event: Event) -> str | None:
    data = (event.artifact or {}).get("data") or {}
    uid = data.get("artifact_uid") if isinstance(data, dict) else None
    return uid if isinstance(uid, str) and 0 < len(uid) <= 200 else None


class ArtifactTeller:
    def __init__(
        self,
        client: AsyncWebClient,
        oz: AsyncOzAPI | None,
        http: aiohttp.ClientSession,
        engine: AsyncEngine,
        metrics: Metrics,
    ) -> None:
        self._client = client
        self._engine = engine
        self._oz = oz
        self._http = http
        self._metrics = metrics

    async def tell(self, event: Event, placement: SlackPlacement) -> Outcome | None:
        """Post the plan or screenshot of ``event`` in the run's thread; ``None``: a plain reply will do."""
        kind = str((event.artifact or {}).get("artifact_type") or "")
        uid = artifact_uid(event)
        if kind not in ("PLAN", "SCREENSHOT") or uid is None or self._oz is None:
            return None
        assert placement.channel_id is not None and placement.thread_ts is not None
        try:
            if kind == "PLAN":
                return await self._plan(event, uid, placement)
            return await self._screenshot(event, uid, placement.channel_id, placement.thread_ts)
        except Unavailable as exc:
            log.warning("artifact not shown in full", run_id=event.run_id, artifact_uid=uid, reason=str(exc))
            return None
        except TryLater as exc:
            return Outcome.retry(exc.reason)

    async def _fetch(self, uid: str) -> object:
        assert self._oz is not None
        try:
            return await self._oz.agent.get_artifact(uid)
        except APIStatusError as exc:
            if exc.status_code in (408, 425, 429) or exc.status_code >= 500:
                raise TryLater(f"Oz API answered {exc.status_code} for the artifact") from None
            raise Unavailable(f"Oz API answered {exc.status_code}") from None
        except APIConnectionError as exc:
            raise TryLater(f"Oz API unreachable ({type(exc).__name__})") from None
        except (ValueError, TypeError):
            raise Unavailable("Oz API answered the artifact with an unreadable body") from None

    # ---- plans -------------------------------------------------------------------------------------

    async def _plan(self, event: Event, uid: str, placement: SlackPlacement) -> Outcome:
        assert placement.channel_id is not None and placement.thread_ts is not None
        plan = await self._fetch(uid)
        if not isinstance(plan, PlanArtifactResponse):
            raise Unavailable("not a plan")
        listed: JSONDict = (event.artifact or {}).get("data") or {}
        title = plan.data.title or str(listed.get("title") or "Plan")
        text, blocks = plan_message(title, plan.data.content, plan.data.url or listed.get("url"), event.run_id)
        posted = await self._post(placement.channel_id, placement.thread_ts, text, blocks)
        # The Approve plan click will name this message: remember whose plan it is.
        record = PlanMessage(posted[0], posted[1], event.run_id, placement.place, uid, datetime.now(UTC))
        async with self._engine.begin() as conn:
            await slack_plans.record_plan(conn, record)
        return Outcome.done(f"plan posted ({posted[0]} {posted[1]})")

    # ---- screenshots -------------------------------------------------------------------------------

    async def _screenshot(self, event: Event, uid: str, channel_id: str, thread_ts: str) -> Outcome:
        shot = await self._fetch(uid)
        if not isinstance(shot, ScreenshotArtifactResponse):
            raise Unavailable("not a screenshot")
        description = clean(shot.data.description or "").strip()
        try:
            content = await self._download(shot.data.download_url, shot.data.content_type)
            await self._client.files_upload_v2(
                channel=channel_id,
                thread_ts=thread_ts,
                file=content,
                filename=f"screenshot-{uid[:40]}.{_EXTENSIONS.get(shot.data.content_type, 'png')}",
                title=truncate(description or "Screenshot", 200),
                alt_txt=truncate(description or "Screenshot from the agent", 1000),
                initial_comment="🖼️ Screenshot" + (f": {truncate(description, 1000)}" if description else ""),
            )
        except TryLater:
            self._metrics.slack_uploads.labels("retry").inc()
            raise
        except (SlackApiError, Unavailable, SlackRequestError) as exc:
            if isinstance(exc, SlackApiError) and is_transient(exc):
                self._metrics.slack_uploads.labels("retry").inc()
                raise TryLater(f"slack error: {error_code(exc)} (uploading a screenshot)") from None
            reason = f"slack error: {error_code(exc)}" if isinstance(exc, SlackApiError) else str(exc) or "refused"
            log.warning("screenshot not uploaded; posting its link", run_id=event.run_id, reason=reason[:200])
            self._metrics.slack_uploads.labels("linked").inc()
            await self._post_link(channel_id, thread_ts, description, shot.data.download_url, shot.data.expires_at)
            return Outcome.done(f"screenshot linked ({reason[:100]})")
        self._metrics.slack_uploads.labels("uploaded").inc()
        return Outcome.done(f"screenshot uploaded ({channel_id} {thread_ts})")

    async def _download(self, url: str, content_type: str) -> bytes:
        if not url.startswith(("https://", "http://")):
            raise Unavailable("the download URL is not http(s)")
        if content_type not in IMAGE_TYPES:
            raise Unavailable(f"not an image Slack shows inline ({content_type[:60]})")
        try:
            async with self._http.get(url, timeout=DOWNLOAD_TIMEOUT, allow_redirects=False) as response:
                if response.status >= 500 or response.status in (408, 429):
                    raise TryLater(f"the screenshot download answered {response.status}")
                if response.status != 200:
                    raise Unavailable(f"the screenshot download answered {response.status}")
                chunks, size = [], 0
                async for chunk in response.content.iter_chunked(1 << 16):
                    size += len(chunk)
                    if size > MAX_SCREENSHOT_BYTES:
                        raise Unavailable("the screenshot is larger than 20 MB")
                    chunks.append(chunk)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TryLater(f"screenshot download failed ({type(exc).__name__})") from None
        return b"".join(chunks)

    async def _post_link(
        self, channel_id: str, thread_ts: str, description: str, url: str, expires_at: datetime
    ) -> None:
        label = description or "Screenshot"
        line = f"🖼️ *Screenshot:* {link(url, label)}"
        if link(url, label) != escape(label):
            line += f" (the link works until {expires_at.strftime('%Y-%m-%d %H:%M UTC')})"
        text = truncate(line, 3000, mrkdwn=True)
        await self._post(channel_id, thread_ts, text, [SectionBlock(text=MarkdownTextObject(text=text))])

    async def _post(self, channel_id: str, thread_ts: str, text: str, blocks: list[Block]) -> tuple[str, str]:
        response = await self._client.chat_postMessage(
            channel=channel_id, thread_ts=thread_ts, text=text, blocks=blocks, unfurl_links=False, unfurl_media=False
        )
        return str(response["channel"]), str(response["ts"])
