"""Run bodies: stored once per observation, read back through a small cache that never loses a body it
was asked for."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.store import run_bodies
from bridge.store.run_bodies import BodyCache


async def test_a_full_cache_returns_every_body_asked_for_even_the_one_it_evicts(engine: AsyncEngine) -> None:
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        ids = await conn.run_sync(
            run_bodies.store, [(f"r{n}", run_bodies.to_json({"run_id": f"r{n}"})) for n in range(3)], now
        )
        cache = BodyCache(max_entries=2)
        await conn.run_sync(cache.get_many, ids[:2])  # full: ids[0] is the least recently used
        # Reading ids[2] must evict an entry; the lookup still answers for ids[0].
        found = await conn.run_sync(cache.get_many, [ids[0], ids[2]])
    assert found == {ids[0]: {"run_id": "r0"}, ids[2]: {"run_id": "r2"}}


async def test_a_body_larger_than_the_cache_is_still_returned(engine: AsyncEngine) -> None:
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        [small, large] = await conn.run_sync(
            run_bodies.store,
            [("a", run_bodies.to_json({"run_id": "a"})), ("b", run_bodies.to_json({"run_id": "b", "x": "y" * 500}))],
            now,
        )
        cache = BodyCache(max_chars=100)
        found = await conn.run_sync(cache.get_many, [small, large])
    assert set(found) == {small, large}
