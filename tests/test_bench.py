"""The runtimes the README and the notebook headers state come from benchmarks/notebooks.csv
(`python scripts/bench.py runtimes` writes them): one source of truth for every "Runs in about"."""
from __future__ import annotations

import csv
import json
import sys

import pytest

from helpers.config import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "scripts"))
import bench  # noqa: E402

ROWS = list(csv.DictReader((REPO_ROOT / "benchmarks" / "notebooks.csv").open()))


# Notebooks that landed without a quiet benchmark yet, named one per line (they state no runtime).
PENDING = set((REPO_ROOT / "benchmarks" / "pending.txt").read_text().split())


def test_every_notebook_was_benchmarked_and_ran():
    stems = {p.stem for p in (REPO_ROOT / "notebooks").glob("day*.ipynb")}
    measured = {r["notebook"] for r in ROWS}
    assert measured | PENDING == stems, "benchmarks/notebooks.csv (+ pending.txt) must cover every notebook: make bench"
    assert not measured & PENDING, "a benchmarked notebook is still listed in benchmarks/pending.txt"
    readme = (REPO_ROOT / "README.md").read_text()
    for stem in PENDING:
        line = next(ln for ln in readme.splitlines() if f"[{stem}]" in ln)
        assert "s measured)" not in line, f"{stem} is pending but the README states a measured runtime"
    assert all(r["ok"] == "True" for r in ROWS), "a notebook failed in the benchmark run"


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r["notebook"])
def test_stated_runtime_is_the_measured_one(row):
    label = bench.runtime_label(float(row["wall_s"]))
    head = "".join(json.loads((REPO_ROOT / "notebooks" / f"{row['notebook']}.ipynb").read_text())["cells"][0]["source"])
    assert f"Runs in about {label} on 2 CPU cores" in head, "header runtime out of step: python scripts/bench.py runtimes"
    line = next(ln for ln in (REPO_ROOT / "README.md").read_text().splitlines() if f"[{row['notebook']}]" in ln)
    assert f"({float(row['wall_s']):.0f} s measured)" in line, "README runtime out of step: python scripts/bench.py runtimes"


def test_runtime_label():
    assert bench.runtime_label(74) == "1 minute (74 s measured)"
    assert bench.runtime_label(100) == "1.5 minutes (100 s measured)"
    assert bench.runtime_label(10) == "0.5 minutes (10 s measured)"
