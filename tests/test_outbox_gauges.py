"""/metrics outbox gauges: what is pending and dead per target, counted at most every few seconds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from bridge.app import OUTBOX_GAUGES_EVERY, Bridge
from bridge.diff import diff_run
from bridge.settings import Settings
from bridge.store import outbox
from bridge.store.engine import migrate
from tests.conftest import make_run
from tests.test_diff import NOW, START


async def test_scrapes_in_quick_succession_share_one_count(tmp_path: Path) -> None:
    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'bridge.db'}",
        oz={"api_key": "k", "base_url": "http://127.0.0.1:9/api/v1"},
        targets={"c": {"type": "console"}, "quiet": {"type": "console"}},
        routes=[{"name": "all", "events": ["*"], "to": ["c"]}],
    )
    bridge = Bridge(settings, clock=lambda: now[0])
    first, later = diff_run(None, make_run("a"), START, NOW), diff_run(None, make_run("b"), START, NOW)
    try:
        await migrate(bridge.engine)
        async with bridge.engine.begin() as conn:
            await outbox.enqueue(conn, [(e, "c") for e in first], now[0])
        assert b'oz_bridge_outbox_depth{target="c"} %d.0' % len(first) in await bridge.render_metrics()
        assert b'oz_bridge_outbox_depth{target="quiet"} 0.0' in await bridge.render_metrics()
        async with bridge.engine.begin() as conn:
            await outbox.enqueue(conn, [(e, "c") for e in later], now[0])
        now[0] += timedelta(seconds=OUTBOX_GAUGES_EVERY / 2)
        assert b'oz_bridge_outbox_depth{target="c"} %d.0' % len(first) in await bridge.render_metrics()
        now[0] += timedelta(seconds=OUTBOX_GAUGES_EVERY / 2)
        rendered = await bridge.render_metrics()
        assert b'oz_bridge_outbox_depth{target="c"} %d.0' % len(first + later) in rendered
        assert b'oz_bridge_dead_letters{target="c"} 0.0' in rendered
    finally:
        await bridge.oz.close()
        await bridge.engine.dispose()
