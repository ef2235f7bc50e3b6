"""Images attached to a message that starts a run, as the run's ``attachments``.

A file id from the event is all the bridge takes from the request: the file's
type, size and download URL come from Slack's own answer (``files.info``), and
the bytes are fetched with the bot token only from Slack's file host (or the
configured Slack API's own origin: a gateway or a fake), never following a
redirect, so no request can make the bridge send its token elsewhere. At most
``MAX_IMAGES`` images of the types the Oz API accepts, each at most
``MAX_IMAGE_BYTES``; anything else is left out and said so.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from oz_agent_sdk.types.agent_run_params import Attachment
from slack_sdk.web.async_client import AsyncWebClient

from bridge.inbound.calls import SlackRefused, Transient, slack_call
from bridge.inbound.feedback import origin_of
from bridge.logs import get_logger

log = get_logger("bridge.inbound.images")
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})  # what POST /agent/runs accepts
MAX_IMAGES = 5  # the API's limit on attachments per run
MAX_IMAGE_BYTES = 5 * 1024 * 1024
SLACK_FILES_ORIGIN = ("https", "files.slack.com", 443)
DOWNLOAD_TIMEOUT = 30


@dataclass
class Images:
    attachments: list[Attachment] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)  # why, one line per file left out

    def note(self) -> str:
        """A line for the thread when some files were not sent with the prompt."""
        if not self.left_out:
            return ""
        return "Not sent to the agent: " + "; ".join(self.left_out) + "."


def _name(file: dict[str, Any], file_id: str) -> str:
    name = file.get("name")
    return name[:200] if isinstance(name, str) and name.strip() else file_id


class SlackImages:
    def __init__(self, slack: AsyncWebClient, session: aiohttp.ClientSession, token: str) -> None:
        self._slack = slack
        self._session = session
        self._token = token
        self._origins = {SLACK_FILES_ORIGIN, origin_of(slack.base_url)}

    async def of(self, file_ids: Sequence[str]) -> Images:
        """The images among ``file_ids``; raises ``Transient`` when Slack can't be reached."""
        images = Images()
        for file_id in file_ids:
            file = await self._info(file_id)
            if file is None:
                images.left_out.append(f"{file_id} (Slack did not show it to the bridge)")
                continue
            name = _name(file, file_id)
            mime = str(file.get("mimetype") or "")
            size = file.get("size")
            if mime not in IMAGE_TYPES:
                images.left_out.append(f"{name} (only JPEG, PNG, GIF and WebP images go with a prompt)")
            elif len(images.attachments) == MAX_IMAGES:
                images.left_out.append(f"{name} (a run takes at most {MAX_IMAGES} images)")
            elif not isinstance(size, int) or size > MAX_IMAGE_BYTES:
                images.left_out.append(f"{name} (larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MB)")
            else:
                data = await self._download(file.get("url_private"), name)
                if data is None:
                    images.left_out.append(f"{name} (could not be downloaded)")
                else:
                    encoded = base64.b64encode(data).decode("ascii")
                    images.attachments.append({"data": encoded, "file_name": name, "mime_type": mime})
        return images

    async def _info(self, file_id: str) -> dict[str, Any] | None:
        try:
            response = await slack_call(self._slack.files_info(file=file_id))
        except SlackRefused as exc:
            log.warning("an attached file was not shown to the bridge", file_id=file_id, error=exc.error)
            return None
        file = response.get("file")
        return file if isinstance(file, dict) else None

    async def _download(self, url: object, name: str) -> bytes | None:
        if not isinstance(url, str) or origin_of(url) not in self._origins:
            log.warning("an attached image's URL is not on Slack's file host; not downloaded", file=name)
            return None
        headers = {"Authorization": f"Bearer {self._token}"}
        timeout = aiohttp.ClientTimeout(total=DOWNLOAD_TIMEOUT)
        try:
            async with self._session.get(url, headers=headers, allow_redirects=False, timeout=timeout) as response:
                if response.status >= 500 or response.status == 429:
                    raise Transient(f"Slack's file host answered {response.status}")
                if response.status != 200 or not response.content_type.startswith("image/"):
                    # Slack answers a request it does not accept with a sign-in page, not an error status.
                    log.warning("an attached image could not be downloaded", file=name, status=response.status)
                    return None
                data = bytearray()
                async for chunk in response.content.iter_chunked(64 * 1024):
                    data += chunk
                    if len(data) > MAX_IMAGE_BYTES:
                        return None  # Slack said it was smaller: believe the bytes
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Transient(f"Slack's file host unreachable ({type(exc).__name__})") from None
        return bytes(data)
