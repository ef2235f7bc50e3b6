"""A fuzzer for ``POST /slack/events``, run in its own process so it never shares the bridge's CPU budget.

    python tests/faults/slack_corpus.py SPEC.json OUT.json

SPEC names the endpoint, the signing secret, a seed, how many requests to send and how many at
once, the bridge's threads ``[channel, root_ts, run_id]``, the real replies to mix in
``[channel, root_ts, ts, text]`` and a ``response_url`` the fake Slack serves; for starting runs,
the ``start_channel``, the ``mention_slots`` (ts of people's messages there that mutants may
mention the bot in) and the ``real_mentions`` ``[channel, ts, text]``; for DMs, the bridge's
``dm_threads`` ``[dm_channel, status_ts, run_id]`` and the ``dm_replies`` ``[dm_channel,
status_ts, ts, text]``. The corpus is random but reproducible from the seed: garbage bytes, JSON of
every shape, Slack events, mentions, DMs and clicks with fields of the wrong type, compressed and
mislabelled bodies, chunked and oversized bodies, raw malformed HTTP, forged, stale and replayed
signatures. Texts say what sent them: ``FORGED-…`` only ever travels without a valid signature,
``REAL-…`` is a genuine reply, ``REALM-…`` a genuine mention, ``REALDM-…`` a genuine reply in a
DM, ``FUZZ-…`` a validly signed mutant. OUT gets the statuses per kind.
Only the standard library and aiohttp, so it runs without the bridge installed.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import hmac
import json
import random
import sys
import time
import zlib
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp

JSON_TYPE = "application/json"
FORM_TYPE = "application/x-www-form-urlencoded"
SLACK_KEYS = [
    "type", "subtype", "channel", "channel_type", "user", "ts", "thread_ts", "text", "bot_id", "bot_profile",
    "event_id", "event", "team_id", "api_app_id", "actions", "action_id", "value", "container", "message",
    "trigger_id", "response_url", "challenge", "payload", "blocks", "files",
]  # fmt: skip
EVENT_TYPES = ["message", "app_mention", "reaction_added", "member_joined_channel", "", "MESSAGE"]
SUBTYPES = [None, "thread_broadcast", "file_share", "message_changed", "message_deleted", "bot_message"]
WEIRD_TEXT = ["", " ", "\x00", "\ud800", "\udfff", "é", "🙂" * 50, "<@UBOT>", "/plan", "/orchestrate  ", "&amp;lt;"]
CONTENT_TYPES = [JSON_TYPE, FORM_TYPE, "text/plain", "", "application/json; charset=utf-8", "multipart/form-data"]
CLICKED = ["oz_cancel_run", "oz_get_files", "oz_retry_run", "oz_mute_run", "oz_unmute_run", "oz_approve_plan", "x"]
CODINGS = ["gzip", "deflate", "br", "zstd", "identity", "gzip, deflate", "x-custom", "GZIP"]


@dataclass
class Request:
    kind: str
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    chunked: bool = False
    raw: bytes | None = None  # sent byte for byte on a socket of its own


def signed(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


class Corpus:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.rng = random.Random(spec["seed"])
        self.secret: str = spec["secret"]
        self.threads: list[list[str]] = spec["threads"]
        self.response_url: str = spec["response_url"]
        self.start_channel: str = spec.get("start_channel", "C0NOSTART")
        self.mention_slots: list[str] = spec.get("mention_slots") or ["1.000001"]
        self.dm_threads: list[list[str]] = spec.get("dm_threads") or [["D0NODM0001", "1.000001", "run-none"]]
        self.replayable: list[Request] = []
        self.n = 0

    # ---- values ------------------------------------------------------------------------------------

    def value(self, depth: int = 0) -> Any:
        r = self.rng
        pick = r.randrange(9 if depth < 3 else 6)
        if pick == 0:
            return None
        if pick == 1:
            return r.choice([True, False])
        if pick == 2:
            return r.choice([0, -1, 2**63, 1.5, 1e308, r.randrange(10**12)])
        if pick in (3, 4):
            return self.text()
        if pick == 5:
            return f"{r.randrange(10**10)}.{r.randrange(10**6):06d}"
        if pick in (6, 7):
            return {r.choice(SLACK_KEYS): self.value(depth + 1) for _ in range(r.randrange(4))}
        return [self.value(depth + 1) for _ in range(r.randrange(4))]

    def text(self) -> str:
        r = self.rng
        if r.random() < 0.3:
            return r.choice(WEIRD_TEXT)
        return "".join(chr(r.choice([r.randrange(32, 127), r.randrange(0x80, 0x2FFF)])) for _ in range(r.randrange(24)))

    def mutated(self, event: dict[str, Any], keep: tuple[str, ...] = ()) -> dict[str, Any]:
        for _ in range(self.rng.randrange(4)):
            key = self.rng.choice([*event, *SLACK_KEYS])
            if key in keep:
                continue
            if self.rng.random() < 0.2:
                event.pop(key, None)
            else:
                event[key] = self.value()
        return event

    # ---- request shapes ----------------------------------------------------------------------------

    def event_of(self, text: str, thread: list[str] | None = None) -> dict[str, Any]:
        r = self.rng
        # Mostly chatter elsewhere, as in a busy workspace; sometimes a bridge thread.
        channel, root_ts = (thread or r.choice(self.threads))[:2] if r.random() < 0.25 else ("C0NOISE", "9.000001")
        event: dict[str, Any] = {
            "type": r.choice(EVENT_TYPES),
            "channel": channel,
            "user": r.choice(["UHUMAN", "UBOT", "U0FUZZ", ""]),
            # Never a real reply's ts (those are Slack-clock times): a mutant must not shadow one.
            "ts": f"{r.randrange(10**8)}.{r.randrange(10**6):06d}",
            "text": text,
        }
        if r.random() < 0.8:
            event["thread_ts"] = root_ts
        subtype = r.choice(SUBTYPES)
        if subtype:
            event["subtype"] = subtype
        return event

    def mention_of(self, text: str) -> dict[str, Any]:
        """A top-level mention of the bot: in the start channel only at a person's real message
        (a run's thread must exist in Slack), anywhere else at any ts (the bridge drops it unread)."""
        r = self.rng
        in_start = r.random() < 0.6
        event: dict[str, Any] = {
            "type": "app_mention" if r.random() < 0.9 else "message",
            "channel": self.start_channel if in_start else r.choice(["C0NOISE", self.threads[0][0], "D0NODM0001"]),
            "user": r.choice(["UHUMAN", "UHUMAN", "UBOT", ""]),
            "ts": r.choice(self.mention_slots) if in_start else f"{r.randrange(10**8)}.{r.randrange(10**6):06d}",
            "text": f"<@UBOT> {text}",
        }
        if r.random() < 0.2:
            event["files"] = r.choice([[{"id": "F000000404"}], "F1", [{"id": ["x"]}], [{}]])
        return event

    def dm_of(self, text: str) -> dict[str, Any]:
        """A message in a DM with the bot: mostly a reply in a DM thread the bridge owns."""
        r = self.rng
        channel, status_ts, _ = r.choice(self.dm_threads)
        event: dict[str, Any] = {
            "type": "message",
            "channel": channel,
            "channel_type": "im",
            "user": r.choice(["U0CREATOR", "U0CREATOR", "UBOT", ""]),
            "ts": f"{r.randrange(10**8)}.{r.randrange(10**6):06d}",
            "text": text,
        }
        if r.random() < 0.8:
            event["thread_ts"] = status_ts
        return event

    def envelope(self, event: Any) -> dict[str, Any]:
        return {"type": "event_callback", "event_id": f"EvFUZZ{self.n}", "team_id": "T0FAKE", "event": event}

    def click(self, tag: str) -> dict[str, Any]:
        r = self.rng
        channel, root_ts, run_id = r.choice(self.threads)
        # A click that could act must point at a message that is no root, or name another run.
        message_ts = r.choice([f"{r.randrange(10**8)}.000001", root_ts])
        value = run_id if message_ts != root_ts else r.choice(["run-other", tag])
        payload: dict[str, Any] = {
            "type": r.choice(["block_actions", "block_actions", "view_submission", "shortcut"]),
            "trigger_id": f"trig{self.n}",
            "user": {"id": r.choice(["UHUMAN", "U0FUZZ"])},
            "container": {"type": "message", "channel_id": channel, "message_ts": message_ts},
            "response_url": r.choice([self.response_url, "http://127.0.0.1:1/x", "https://example.com/x", "ftp://x"]),
            "actions": [{"action_id": r.choice(CLICKED), "value": value}],
        }
        return self.mutated(payload) if r.random() < 0.5 else payload

    def request(self) -> Request:
        self.n += 1
        kinds = [
            ("garbage", 8), ("json", 12), ("event", 26), ("click", 10), ("forged", 14), ("encoded", 6),
            ("replay", 8), ("oversize", 1), ("chunked", 3), ("raw_http", 1), ("verification", 2),
            ("mention", 2), ("dm", 2),
        ]  # fmt: skip
        kind = self.rng.choices([k for k, _ in kinds], [w for _, w in kinds])[0]
        return getattr(self, f"_{kind}")()

    def _sign(self, request: Request) -> Request:
        request.headers.update(signed(self.secret, request.body))
        return request

    def _garbage(self) -> Request:
        r = self.rng
        body = r.randbytes(r.randrange(600))
        request = Request("garbage", body, {"Content-Type": r.choice(CONTENT_TYPES)})
        return self._sign(request) if r.random() < 0.6 else request

    def _json(self) -> Request:
        value = self.value() if self.rng.random() < 0.3 else self.mutated({"type": self.rng.choice(SLACK_KEYS)})
        body = json.dumps(value).encode()
        return self._sign(Request("json", body, {"Content-Type": JSON_TYPE}))

    def _event(self) -> Request:
        event = self.event_of(f"FUZZ-{self.n}")
        body = self.envelope(self.mutated(event) if self.rng.random() < 0.6 else event)
        if self.rng.random() < 0.15:
            body = self.mutated(body)
        request = self._sign(Request("event", json.dumps(body).encode(), {"Content-Type": JSON_TYPE}))
        if self.rng.random() < 0.2:
            self.replayable.append(request)
        return request

    def _mention(self) -> Request:
        event = self.mention_of(f"FUZZ-{self.n} start something")
        body = self.envelope(self.mutated(event, keep=("ts", "channel")) if self.rng.random() < 0.5 else event)
        request = self._sign(Request("mention", json.dumps(body).encode(), {"Content-Type": JSON_TYPE}))
        if self.rng.random() < 0.3:
            self.replayable.append(request)
        return request

    def _dm(self) -> Request:
        event = self.dm_of(f"FUZZ-{self.n} in a DM")
        body = self.envelope(self.mutated(event) if self.rng.random() < 0.5 else event)
        request = self._sign(Request("dm", json.dumps(body).encode(), {"Content-Type": JSON_TYPE}))
        if self.rng.random() < 0.2:
            self.replayable.append(request)
        return request

    def _click(self) -> Request:
        form = urlencode({"payload": json.dumps(self.click(f"FUZZ-{self.n}"))}).encode()
        return self._sign(Request("click", form, {"Content-Type": FORM_TYPE}))

    def forged(self, body: bytes, content_type: str = JSON_TYPE) -> Request:
        r = self.rng
        request = Request("forged", body, {"Content-Type": content_type})
        how = r.randrange(7)
        if how == 0:
            request.headers.update(signed("not-the-secret", body))
        elif how == 1:
            request.headers.update(signed(self.secret, body, int(time.time()) - 301 - r.randrange(10**6)))
        elif how == 2:
            request.headers.update(signed(self.secret, body, int(time.time()) + 301 + r.randrange(10**6)))
        elif how == 3:
            headers = signed(self.secret, body)
            request.body = body.replace(b"FORGED", b"FORGEd", 1) + b" "  # signed, then changed
            request.headers.update(headers)
        elif how == 4:
            request.headers.update(signed(self.secret, body + b"x"))
        elif how == 5:
            request.headers.update(
                {
                    "X-Slack-Request-Timestamp": r.choice([" 1", "1e9", "-1", "١٢٣", "9" * 30]),
                    "X-Slack-Signature": "v0=",
                }
            )
        return request  # how == 6: no signature at all

    def _forged(self) -> Request:
        pick = self.rng.random()
        if pick < 0.15:
            event = self.mention_of(f"FORGED-{self.n} start a run")
            event.update(type="app_mention", user="UHUMAN", channel=self.start_channel)
            event["ts"] = self.rng.choice(self.mention_slots)
            return self.forged(json.dumps(self.envelope(event)).encode())
        if pick < 0.25:
            event = self.dm_of(f"FORGED-{self.n} in a DM")
            event.update(user="U0CREATOR", thread_ts=self.rng.choice(self.dm_threads)[1])
            return self.forged(json.dumps(self.envelope(event)).encode())
        if pick < 0.45:
            channel, root_ts, run_id = self.rng.choice(self.threads)
            payload = {"type": "block_actions", "trigger_id": f"trig{self.n}", "user": {"id": "UHUMAN"},
                       "container": {"channel_id": channel, "message_ts": root_ts},
                       "actions": [{"action_id": "oz_cancel_run", "value": run_id}]}  # fmt: skip
            return self.forged(urlencode({"payload": json.dumps(payload)}).encode(), FORM_TYPE)
        event = self.event_of(f"FORGED-{self.n}")
        event.update(type="message", user="UHUMAN", thread_ts=self.rng.choice(self.threads)[1])
        event.pop("subtype", None)
        return self.forged(json.dumps(self.envelope(event)).encode())

    def _encoded(self) -> Request:
        r = self.rng
        plain = json.dumps(self.envelope(self.event_of(f"FUZZ-{self.n}"))).encode()
        body = r.choice([plain, gzip.compress(plain), zlib.compress(plain), plain[: r.randrange(1, len(plain))]])
        request = Request("encoded", body, {"Content-Type": JSON_TYPE, "Content-Encoding": r.choice(CODINGS)})
        return self._sign(request) if r.random() < 0.8 else request

    def _replay(self) -> Request:
        if not self.replayable:
            return self._event()
        original = self.rng.choice(self.replayable)
        return Request("replay", original.body, dict(original.headers), original.chunked)

    def _oversize(self) -> Request:
        body = b'{"type": "event_callback", "pad": "' + b"x" * self.rng.randrange(1 << 20, (1 << 20) + 4096) + b'"}'
        request = Request("oversize", body, {"Content-Type": JSON_TYPE}, chunked=self.rng.random() < 0.5)
        return self._sign(request)

    def _chunked(self) -> Request:
        request = self._event()
        request.kind, request.chunked = "chunked", True
        return request

    def _verification(self) -> Request:
        body = {"type": "url_verification", "challenge": self.value() if self.rng.random() < 0.5 else "c"}
        return self._sign(Request("verification", json.dumps(body).encode(), {"Content-Type": JSON_TYPE}))

    def _raw_http(self) -> Request:
        r = self.rng
        body = json.dumps(self.envelope(self.event_of(f"FUZZ-{self.n}"))).encode()
        sig = "".join(f"{k}: {v}\r\n" for k, v in signed(self.secret, body).items()).encode()
        head = b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + sig
        variants = [
            head + b"Content-Length: %d\r\n\r\n" % (len(body) + 50) + body,  # cut short
            head + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n" + body + b"\r\n0\r\n\r\n",  # bad chunk size
            head + b"Transfer-Encoding: chunked\r\n\r\n%x\r\n" % len(body) + body,  # never finished
            head + b"Content-Length: 5\r\nContent-Length: 7\r\n\r\n" + body,
            head + b"X-Bad: \xff\xfe\x00\r\n\r\n",
            b"POST /slack/events HTTP/1.1\r\n" + b"X-Long: " + b"a" * 10000 + b"\r\n\r\n",
            head + b"Content-Length: -1\r\n\r\n",
            head + b"Transfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            r.randbytes(r.randrange(1, 300)),
        ]
        return Request("raw_http", raw=r.choice(variants))

    def real(self, reply: list[str], index: int) -> Request:
        channel, root_ts, ts, text = reply
        event = {"type": "message", "channel": channel, "channel_type": "channel", "user": "UHUMAN",
                 "text": text, "ts": ts, "thread_ts": root_ts, "event_ts": ts}  # fmt: skip
        return self._real(event, f"EvREAL{index}")

    def real_mention(self, mention: list[str], index: int) -> Request:
        channel, ts, text = mention
        event = {"type": "app_mention", "channel": channel, "user": "UHUMAN", "text": text, "ts": ts, "event_ts": ts}
        return self._real(event, f"EvREALMENTION{index}")

    def real_dm(self, reply: list[str], index: int) -> Request:
        channel, status_ts, ts, text = reply
        event = {"type": "message", "channel": channel, "channel_type": "im", "user": "U0CREATOR",
                 "text": text, "ts": ts, "thread_ts": status_ts, "event_ts": ts}  # fmt: skip
        return self._real(event, f"EvREALDM{index}")

    def _real(self, event: dict[str, Any], event_id: str) -> Request:
        body = {"type": "event_callback", "event_id": event_id, "team_id": "T0FAKE", "event": event}
        request = self._sign(Request("real", json.dumps(body).encode(), {"Content-Type": JSON_TYPE}))
        self.replayable.append(request)
        if self.rng.random() < 0.3:  # the same message as its other event type: another event id, one message
            twin = "message" if event["type"] == "app_mention" else "app_mention"
            other = {**body, "event_id": f"{event_id}twin", "event": {**event, "type": twin}}
            self.replayable.append(
                self._sign(Request("replay", json.dumps(other).encode(), {"Content-Type": JSON_TYPE}))
            )
        return request

    def genuine(self, kind: str, item: list[str], index: int) -> Request:
        if kind == "mention":
            return self.real_mention(item, index)
        if kind == "dm":
            return self.real_dm(item, index)
        return self.real(item, index)


async def _chunks(body: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(body), 4096):
        yield body[start : start + 4096]


async def send(session: aiohttp.ClientSession, url: str, request: Request) -> str:
    if request.raw is not None:
        return await send_raw(url, request.raw)
    data: Any = _chunks(request.body) if request.chunked else request.body
    try:
        async with session.post(url, data=data, headers=request.headers, skip_auto_headers=["Content-Type"]) as r:
            await r.read()
            return str(r.status)
    except (aiohttp.ClientError, TimeoutError) as exc:
        return f"client:{type(exc).__name__}"


async def send_raw(url: str, raw: bytes) -> str:
    parts = urlsplit(url)
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(parts.hostname, parts.port), 2)
        writer.write(raw)
        await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
        status_line = await asyncio.wait_for(reader.readline(), 2)
        writer.close()
    except (OSError, TimeoutError):
        return "raw:no-answer"
    fields = status_line.split()
    return f"raw:{fields[1].decode(errors='replace')}" if len(fields) > 1 else "raw:closed"


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    corpus = Corpus(spec)
    count = int(spec["count"])
    genuine = [("reply", r) for r in spec["replies"]]
    genuine += [("mention", m) for m in spec.get("real_mentions", [])]
    genuine += [("dm", d) for d in spec.get("dm_replies", [])]
    random.Random(spec["seed"]).shuffle(genuine)
    real_at = {int(count * (i + 0.5) / max(len(genuine), 1)): i for i in range(len(genuine))}
    results: dict[str, Counter[str]] = {}
    server_errors: list[dict[str, Any]] = []
    queue: asyncio.Queue[Request | None] = asyncio.Queue(maxsize=4 * int(spec["concurrency"]))
    started = time.monotonic()

    async def worker(session: aiohttp.ClientSession) -> None:
        while (request := await queue.get()) is not None:
            outcome = await send(session, spec["url"], request)
            results.setdefault(request.kind, Counter())[outcome] += 1
            if outcome[-3:].isdigit() and int(outcome[-3:]) >= 500 and len(server_errors) < 20:
                server_errors.append({"kind": request.kind, "status": outcome, "body": request.body[:300].hex()})

    connector = aiohttp.TCPConnector(limit=int(spec["concurrency"]), force_close=False)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        workers = [asyncio.create_task(worker(session)) for _ in range(int(spec["concurrency"]))]
        for n in range(count):
            index = real_at.get(n)
            await queue.put(corpus.request() if index is None else corpus.genuine(*genuine[index], index))
        for _ in workers:
            await queue.put(None)
        await asyncio.gather(*workers)
    return {
        "sent": count,
        "seconds": round(time.monotonic() - started, 2),
        "results": {kind: dict(counter) for kind, counter in results.items()},
        "server_errors": server_errors,
    }


def main() -> None:
    spec_path, out_path = sys.argv[1], sys.argv[2]
    with open(spec_path) as spec_file:
        spec = json.load(spec_file)
    outcome = asyncio.run(run(spec))
    with open(out_path, "w") as out_file:
        json.dump(outcome, out_file)


if __name__ == "__main__":
    main()
