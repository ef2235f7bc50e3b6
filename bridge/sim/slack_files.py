"""Files in the Slack stand-in: what people attach, and what an app uploads.

- A person's file (``add_file``) has a ``url_private`` that answers only with the
  bot token in ``Authorization``, as Slack's does; ``files.info`` describes it.
- An app uploads the way ``files_upload_v2`` does: ``files.getUploadURLExternal``
  hands out an upload URL, the bytes are POSTed there (raw or as the multipart
  field ``file``), ``files.completeUploadExternal`` shares them into a channel
  or thread.
"""

from __future__ import annotations

import itertools
import json
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .slack_errors import SlackError

if TYPE_CHECKING:
    from .slack import SlackStandIn

Args = dict[str, Any]


class SlackFiles:
    def __init__(self, slack: SlackStandIn) -> None:
        self._slack = slack
        self._files: dict[str, Args] = {}  # file id → file object, with its bytes under "content"
        self._ids = itertools.count(1)
        self.upload_failures: deque[int] = deque()  # statuses the next POSTs to an upload URL answer

    def methods(self) -> dict[str, Callable[[Args], Args]]:
        return {
            "files.getUploadURLExternal": self._get_upload_url,
            "files.completeUploadExternal": self._complete_upload,
            "files.info": self._info,
        }

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/upload/{file_id}", self._upload)
        app.router.add_get("/files-pri/{file_id}/{name}", self._download)

    def content(self, file_id: str) -> bytes | None:
        content = self._files.get(file_id, {}).get("content")
        return content if isinstance(content, bytes) else None

    def add_file(self, name: str, mimetype: str, content: bytes, *, user: str = "UHUMAN") -> Args:
        """A file a person attached to a message: pass the result in ``post_user_message(files=[…])``."""
        file_id = self._new_id()
        file = {"id": file_id, "name": name, "title": name, "mimetype": mimetype, "size": len(content), "user": user}
        file["url_private"] = f"{self._slack.base_url}/files-pri/{self._slack.team_id}-{file_id}/{name}"
        self._files[file_id] = {**file, "content": content}
        return file

    def describe_as(self, file_id: str, **fields: Any) -> None:
        """Change what ``files.info`` says about a file (how an app treats Slack's answer, tested)."""
        self._files[file_id].update(fields)

    def _new_id(self) -> str:
        return f"F{next(self._ids):09d}"

    def _public(self, file_id: str) -> Args:
        return {k: v for k, v in self._files[file_id].items() if k != "content"}

    # ---- Web API methods ---------------------------------------------------------------------------

    def _info(self, args: Args) -> Args:
        file_id = str(args.get("file") or "")
        if file_id not in self._files:
            raise SlackError("file_not_found")
        return {"ok": True, "file": self._public(file_id)}

    def _get_upload_url(self, args: Args) -> Args:
        filename, length = args.get("filename"), str(args.get("length") or "")
        if not filename or not length.isdigit() or int(length) <= 0:
            raise SlackError("invalid_arguments")
        file_id = self._new_id()
        self._files[file_id] = {"id": file_id, "name": str(filename), "size": int(length)}
        return {"ok": True, "upload_url": f"{self._slack.base_url}/upload/{file_id}", "file_id": file_id}

    def _complete_upload(self, args: Args) -> Args:
        items = args.get("files")
        if isinstance(items, str):
            items = json.loads(items)
        if not isinstance(items, list) or not items:
            raise SlackError("invalid_arguments")
        files = []
        for item in items:
            file = self._files.get(str(item.get("id")))
            if file is None or "content" not in file:
                raise SlackError("file_not_found")
            file["title"] = item.get("title") or file["name"]
            files.append(self._public(file["id"]))
        if args.get("channel_id"):
            channel = self._slack.channel({"channel": args["channel_id"]})
            fields = {**self._slack.bot_fields(), "upload": True, "files": files}
            fields["text"] = str(args.get("initial_comment") or "")
            self._slack.store(channel, fields, args.get("thread_ts"), broadcast=False)
        return {"ok": True, "files": [{"id": f["id"], "title": f["title"]} for f in files]}

    # ---- HTTP endpoints ----------------------------------------------------------------------------

    async def _upload(self, request: web.Request) -> web.Response:
        """The upload URL of Slack's external upload flow: takes the raw bytes of one file."""
        file = self._files.get(request.match_info["file_id"])
        content = await request.read()
        if self.upload_failures:
            return web.Response(status=self.upload_failures.popleft(), text="upload failed")
        if file is None:
            return web.Response(status=404, text="unknown upload")
        # Slack's upload URL takes the file as the body, or as a multipart form field "file".
        if request.content_type.startswith("multipart/"):
            form = await request.post() if not content else None
            field_value = form.get("file") if form is not None else None
            if isinstance(field_value, web.FileField):
                content = field_value.file.read()
        file["content"] = content
        return web.Response(text=f"OK - {len(content)}")

    async def _download(self, request: web.Request) -> web.Response:
        """A ``url_private``: the file's bytes for the bot token, a login page for anyone else (as Slack)."""
        team_and_id = request.match_info["file_id"]
        file = self._files.get(team_and_id.rsplit("-", 1)[-1])
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token != self._slack.token:
            return web.Response(status=200, text="<html>Sign in to Slack</html>", content_type="text/html")
        if file is None or "content" not in file:
            return web.Response(status=404, text="file not found")
        return web.Response(body=file["content"], content_type=str(file.get("mimetype") or "application/octet-stream"))
