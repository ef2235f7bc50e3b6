"""Migrations, on SQLite and PostgreSQL, along whatever revision chain exists.

- From an empty database, `migrate` (what `run` and `db upgrade` do) reaches head, and the schema is
  exactly what ``bridge/store/tables.py`` describes.
- From every earlier revision, holding rows written at that revision, `migrate` reaches head without
  losing a row, and the head code reads every table.
- Down again one revision at a time to empty, where a revision supports it, and back up.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.store import engine as engine_module
from bridge.store import tables
from bridge.store.engine import MIGRATIONS, create_engine, current_revision, migrate
from tests.pg import scratch_database

SCRIPTS = ScriptDirectory(str(MIGRATIONS))
HEAD = SCRIPTS.get_current_head()
# Oldest first: every revision an existing database may be at.
REVISIONS = [script.revision for script in reversed(list(SCRIPTS.walk_revisions()))]


@pytest.fixture(params=["sqlite", "postgresql"])
async def empty(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """An engine on a database with no tables at all."""
    if request.param == "sqlite":
        db = create_engine(f"sqlite:///{tmp_path / 'bridge.db'}")
        yield db
        await db.dispose()
        return
    async with scratch_database() as url:
        db = create_engine(url)
        yield db
        await db.dispose()


def alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


async def move_to(engine: AsyncEngine, revision: str, *, down: bool = False) -> None:
    async with engine.begin() as conn:
        action = command.downgrade if down else command.upgrade
        await conn.run_sync(lambda sync: action(alembic_config(sync), revision))


def table_names(sync: Connection) -> set[str]:
    return set(sa.inspect(sync).get_table_names()) - {"alembic_version"}


def filler(column: sa.Column[Any], table: str, dialect: str) -> object:
    """A value of the column's type, for a row written by whatever schema a revision has."""
    kind = column.type
    if isinstance(kind, sa.JSON):
        return {"written_at_revision": True}
    if isinstance(kind, sa.DateTime):
        moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
        return moment.replace(tzinfo=None) if dialect == "sqlite" else moment
    if isinstance(kind, sa.Boolean):
        return True
    if isinstance(kind, sa.Integer):
        return 7
    if isinstance(kind, sa.Float | sa.Numeric):
        return 1.5
    if isinstance(kind, sa.String | sa.Text):
        length = getattr(kind, "length", None) or 64
        return f"{table}.{column.name}"[:length]
    raise AssertionError(f"{table}.{column.name}: no filler value for {kind!r}; add one to this test")


def write_a_row_in_every_table(sync: Connection) -> dict[str, int]:
    """One row per table (parents first), valued by column type; returns the row counts."""
    reflected = sa.MetaData()
    reflected.reflect(sync)
    written: dict[str, dict[str, object]] = {}
    for table in reflected.sorted_tables:
        if table.name == "alembic_version":
            continue
        row: dict[str, object] = {}
        for column in table.columns:
            if column.autoincrement is True or (column.primary_key and isinstance(column.type, sa.Integer)):
                continue
            parents = [fk.column for fk in column.foreign_keys]
            if parents:
                row[column.name] = written[parents[0].table.name][parents[0].name]
            else:
                row[column.name] = filler(column, table.name, sync.dialect.name)
        sync.execute(table.insert().values(row))
        written[table.name] = row
    return counts(sync)


def counts(sync: Connection) -> dict[str, int]:
    reflected = sa.MetaData()
    reflected.reflect(sync)
    return {
        name: sync.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
        for name, table in reflected.tables.items()
        if name != "alembic_version"
    }


def schema_differences(sync: Connection) -> list[Any]:
    context = MigrationContext.configure(sync, opts={"compare_type": False})
    return list(compare_metadata(context, tables.metadata))


async def test_there_is_one_chain_from_empty_to_head() -> None:
    assert SCRIPTS.get_heads() == [HEAD], "several heads: re-chain the revisions"


async def test_the_engine_knows_the_head_so_an_up_to_date_start_skips_alembic() -> None:
    assert engine_module.HEAD_REVISION == HEAD, "a new migration: update HEAD_REVISION in bridge/store/engine.py"


async def test_a_database_at_head_is_left_alone_and_one_behind_is_upgraded(empty: AsyncEngine) -> None:
    await migrate(empty)
    async with empty.begin() as conn:
        await conn.execute(sa.text("CREATE TABLE canary (x INTEGER)"))
    await migrate(empty)  # at head: nothing runs, nothing is dropped
    async with empty.connect() as conn:
        assert await conn.run_sync(lambda sync: sa.inspect(sync).has_table("canary"))
    await move_to(empty, str(SCRIPTS.get_revision(HEAD).down_revision), down=True)
    await migrate(empty)
    assert await current_revision(empty) == HEAD
    assert REVISIONS[-1] == HEAD and SCRIPTS.get_revision(REVISIONS[0]).down_revision is None


async def test_migrate_builds_the_schema_tables_py_describes_from_empty(empty: AsyncEngine) -> None:
    await migrate(empty)
    assert await current_revision(empty) == HEAD
    async with empty.connect() as conn:
        assert await conn.run_sync(table_names) == set(tables.metadata.tables)
        assert await conn.run_sync(schema_differences) == []
    await migrate(empty)  # a second start changes nothing
    assert await current_revision(empty) == HEAD


@contextmanager
def upgrade_failures_name(revision: str) -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        raise AssertionError(f"upgrading a populated database from {revision} to {HEAD} failed: {exc!r}") from exc


@pytest.mark.parametrize("revision", REVISIONS)
async def test_migrate_brings_a_populated_database_from_each_revision_to_head(
    empty: AsyncEngine, revision: str
) -> None:
    await move_to(empty, revision)
    async with empty.begin() as conn:
        before = await conn.run_sync(write_a_row_in_every_table)
    assert before and all(n == 1 for n in before.values())
    with upgrade_failures_name(revision):
        await migrate(empty)
    assert await current_revision(empty) == HEAD
    async with empty.connect() as conn:
        after = await conn.run_sync(counts)
        kept = {name: after[name] for name in before if name in after}
        assert kept == {name: before[name] for name in kept}, "rows lost by the upgrade"
        for table in tables.metadata.sorted_tables:  # the head code reads what the upgrade left
            (await conn.execute(sa.select(table))).all()


async def test_downgrade_one_revision_at_a_time_to_empty_and_back(empty: AsyncEngine) -> None:
    await migrate(empty)
    for revision in reversed(REVISIONS):
        previous = SCRIPTS.get_revision(revision).down_revision
        try:
            await move_to(empty, "-1", down=True)
        except NotImplementedError:
            pytest.skip(f"revision {revision} does not support downgrade")
        assert await current_revision(empty) == previous
    async with empty.connect() as conn:
        assert await conn.run_sync(table_names) == set()
    await migrate(empty)
    assert await current_revision(empty) == HEAD
