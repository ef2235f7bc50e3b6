"""``python -m benchmarks``, the benchmark suite: its table, its options, its output file.

The suite's figures are the suite's business; these tests only check its machinery, over tiny sizes
(the hidden ``--smoke`` variant), in a subprocess as it is run. Nothing here asserts a timing.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import suite
from benchmarks.delivery_cost import Trees

REPO = Path(__file__).resolve().parents[2]


def expected_rows(scale: suite.Scale) -> set[str]:
    """What issue 8 asks the table to hold, one key per row, at the variant's sizes."""
    return {
        "startup",
        *(f"claim {kind} {backlog}" for kind in ("sqlite", "postgresql") for backlog in scale.claim_backlogs[1:]),
        *(f"delivery {kind} {runs}" for kind in ("sqlite", "postgresql") for runs in scale.drain_runs),
        "catch-up",
        "idle requests", "idle bytes", "burst requests", "burst bytes", "after requests", "after bytes",
        "inbound p50", "inbound p99", "inbound closed",
        "ack p50", "ack p99", "ack max",
        "rss 0", "rss small", "rss large",
    }  # fmt: skip


def run_suite(*args: str, timeout: float = 110) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OZ_BRIDGE_", "WARP_", "SLACK_"))}
    if "OZ_BRIDGE_TEST_PG" in os.environ:
        env["OZ_BRIDGE_TEST_PG"] = os.environ["OZ_BRIDGE_TEST_PG"]
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def table_rows(text: str) -> dict[str, list[str]]:
    """The table's body rows by their measure cell, each as its list of cells."""
    rows = {}
    for line in text.splitlines():
        if line.startswith("| ") and not line.startswith(("| measure |", "|---")):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            rows[cells[0]] = cells
    return rows


def measured(text: str, measures: set[str]) -> dict[str, list[str]]:
    """The rows of ``measures`` (by name), from a table produced at smoke sizes."""
    ctx = suite.Context(suite.SMOKE, REPO, Trees(None, REPO))
    wanted = {row.measure for kind in suite.MEASURES if kind.name in measures for row in kind(ctx).rows()}
    rows = table_rows(text)
    assert wanted <= set(rows), f"rows missing: {sorted(wanted - set(rows))}"
    return {name: cells for name, cells in rows.items() if name in wanted}


def assert_figures(rows: dict[str, list[str]]) -> None:
    for name, (_measure, ours, base, _against, ratio, _goal, result) in rows.items():
        assert re.fullmatch(r"[\d,.]+( \S+)?", ours), f"{name}: no figure for oz-bridge ({ours!r})"
        assert re.fullmatch(r"[\d,.]+( \S+)?", base), f"{name}: no figure for its baseline ({base!r})"
        assert re.fullmatch(r"\d+\.\d\d|nan", ratio), f"{name}: no ratio ({ratio!r})"
        assert result in {"met", "missed", "—"}, f"{name}: {result}"


@pytest.mark.parametrize("scale", [suite.FULL, suite.QUICK, suite.SMOKE], ids=lambda s: s.name)
def test_every_variant_has_a_row_for_each_measure_of_the_issue(scale: suite.Scale, tmp_path: Path) -> None:
    ctx = suite.Context(scale, tmp_path, Trees(None, tmp_path))
    rows = [row for kind in suite.MEASURES for row in kind(ctx).rows()]

    assert sorted(row.key for row in rows) == sorted(expected_rows(scale))
    assert len({row.measure for row in rows}) == len(rows), "two rows with one label"
    text = suite.table(rows, {row.key: [] for row in rows}, {})
    assert text.splitlines()[0] == "| measure | oz-bridge | baseline | against | ratio | goal | result |"
    assert set(table_rows(text)) == {row.measure for row in rows}


def test_the_table_goes_to_out_with_date_machine_and_command(tmp_path: Path) -> None:
    out = tmp_path / "docs" / "performance.md"

    done = run_suite("--only", "startup,traffic", "--out", str(out))

    assert done.returncode == 0, done.stderr[-3000:]
    written = out.read_text()
    assert_figures(measured(written, {"startup", "traffic"}))
    assert f"- command: `python -m benchmarks --smoke --only startup,traffic --out {out}`" in written
    assert re.search(r"^- date: \d{4}-\d\d-\d\d \d\d:\d\d UTC$", written, re.MULTILINE)
    assert re.search(r"^- machine: \d+ cores, .+; Python 3\.\d+.*; SQLite 3\.", written, re.MULTILINE)
    assert "## How to read it" in written
    assert table_rows(written) == table_rows(done.stdout), "what is printed is what is written"


def test_no_write_prints_the_table_and_leaves_out_alone(tmp_path: Path) -> None:
    out = tmp_path / "performance.md"

    done = run_suite("--only", "ack", "--no-write", "--out", str(out))

    assert done.returncode == 0, done.stderr[-3000:]
    assert_figures(measured(done.stdout, {"ack"}))
    assert not out.exists()


def test_an_unknown_measure_is_refused_before_anything_runs(tmp_path: Path) -> None:
    done = run_suite("--only", "startup,warp-speed", "--out", str(tmp_path / "p.md"), timeout=60)

    assert done.returncode == 2
    assert "unknown measure(s) warp-speed" in done.stderr
    assert not (tmp_path / "p.md").exists()


def test_every_measure_runs_at_smoke_sizes(soak: bool) -> None:
    """All of them, PostgreSQL included: a couple of minutes, so a soak variant."""
    if not soak:
        pytest.skip("a few minutes: run with --soak")

    done = run_suite("--no-write", timeout=900)

    assert done.returncode == 0, done.stderr[-3000:]
    assert_figures(measured(done.stdout, {kind.name for kind in suite.MEASURES}))
