"""Run bodies: each observed run stored once, shared by every outbox row it produced.

An observation of a run with thousands of artifacts yields thousands of events;
storing the run with each of them grew storage and memory with the square of the
artifact count. The body is kept as the JSON text it will be sent as, and is
forgotten once no outbox row refers to it any more.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime

from sqlalchemy import delete, exists, insert, select
from sqlalchemy.engine import Connection

from bridge.events import JSONDict
from bridge.store.tables import outbox, run_bodies


def to_json(run: JSONDict) -> str:
    """The body's text: compact JSON, as webhooks send it."""
    return json.dumps(run, separators=(",", ":"), ensure_ascii=False)


def store(conn: Connection, bodies: Sequence[tuple[str, str]], now: datetime) -> list[int]:
    """Store ``(run_id, body text)`` pairs; their ids, in the same order."""
    if not bodies:
        return []
    result = conn.execute(
        insert(run_bodies).returning(run_bodies.c.id, sort_by_parameter_order=True),
        [{"run_id": run_id, "body": body, "stored_at": now} for run_id, body in bodies],
    )
    return [row.id for row in result]


def forget_unreferenced(conn: Connection, ids: Collection[int] | None = None) -> int:
    """Delete the bodies (of ``ids``, or all) that no outbox row refers to any more."""
    if ids is None:
        result = conn.execute(delete(run_bodies).where(~exists().where(outbox.c.body_id == run_bodies.c.id)))
        return int(result.rowcount or 0)
    if not ids:
        return 0
    # Looked up by the given ids on both sides (an index seek on outbox.body_id), never
    # an anti-join over the outbox.
    wanted = list(ids)
    still_used = select(outbox.c.body_id).where(outbox.c.body_id.in_(wanted))
    result = conn.execute(delete(run_bodies).where(run_bodies.c.id.in_(wanted), run_bodies.c.id.not_in(still_used)))
    return int(result.rowcount or 0)


class BodyCache:
    """Parsed run bodies by id: a run's many events (one queue, delivered one after
    another) parse its body once. Small: bounded by entries and by the bodies' text."""

    def __init__(self, max_chars: int = 8 * 1024 * 1024, max_entries: int = 64) -> None:
        self._max_chars = max_chars
        self._max_entries = max_entries
        self._chars = 0
        self._entries: OrderedDict[int, tuple[JSONDict, int]] = OrderedDict()

    def get_many(self, conn: Connection, ids: Collection[int]) -> Mapping[int, JSONDict]:
        """The stored bodies of ``ids`` (an id whose body is gone is absent from the result).

        Cached entries are taken before any body is read: reading puts entries in, which
        may evict the least recently used ones, and an entry evicted by its own lookup
        must still be returned.
        """
        found: dict[int, JSONDict] = {}
        for body_id in set(ids):
            entry = self._entries.get(body_id)
            if entry is not None:
                self._entries.move_to_end(body_id)
                found[body_id] = entry[0]
        missing = [body_id for body_id in set(ids) if body_id not in found]
        if missing:
            rows = conn.execute(select(run_bodies.c.id, run_bodies.c.body).where(run_bodies.c.id.in_(missing)))
            for row in rows:
                found[row.id] = json.loads(row.body)
                self._put(row.id, found[row.id], len(row.body))
        return found

    def _put(self, body_id: int, body: JSONDict, size: int) -> None:
        self._entries[body_id] = (body, size)
        self._chars += size
        while len(self._entries) > 1 and (self._chars > self._max_chars or len(self._entries) > self._max_entries):
            _, (_, evicted) = self._entries.popitem(last=False)
            self._chars -= evicted
