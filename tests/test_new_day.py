"""`make new-day` scaffolds a house-style notebook and a README row, and never overwrites."""
from __future__ import annotations

import importlib.util
import json

from helpers import config, course

spec = importlib.util.spec_from_file_location("new_day", config.REPO_ROOT / "scripts" / "new_day.py")
new_day = importlib.util.module_from_spec(spec)
spec.loader.exec_module(new_day)


def test_scaffold_has_the_house_shape():
    nb = new_day.notebook(16, "hybrid_search", "Hybrid search")
    sources = ["".join(c["source"]) for c in nb["cells"]]
    assert sources[0].startswith("# Day 16: Hybrid search") and course.badge_markdown("day16_hybrid_search.ipynb") in sources[0]
    assert "".join(course.colab_install_lines()) in sources[2] and "helpers.setup(day=16" in sources[2]
    assert any(s.startswith("# Check:") and "NotImplementedError" in s for s in sources), "an unfinished check must fail"
    assert any(s.startswith("## Summary") for s in sources) and any(s.startswith("## Exercises") for s in sources)
    assert f"{round(config.NOTEBOOK_BUDGET_S / 60)} minutes" in sources[0]
    json.dumps(nb)  # serialisable as a notebook


def test_cli_writes_notebook_and_readme_row_once(tmp_path, monkeypatch):
    (tmp_path / "notebooks").mkdir()
    readme = tmp_path / "README.md"
    readme.write_text("| Day | Notebook |\n|---|---|\n| 0 | [day00_x](notebooks/day00_x.ipynb) | x |\n\nAfter.\n")
    monkeypatch.setattr(new_day, "ROOT", tmp_path)
    monkeypatch.setattr(course, "NOTEBOOKS_DIR", tmp_path / "notebooks")
    assert new_day.main(["16", "hybrid_search", "Hybrid search"]) == 0
    assert (tmp_path / "notebooks" / "day16_hybrid_search.ipynb").is_file()
    lines = readme.read_text().splitlines()
    assert lines[3].startswith("| 16 | [day16_hybrid_search]") and lines[5] == "After."
    assert new_day.main(["16", "other", "Again"]) == 1, "a second day 16 must be refused"
    assert new_day.main(["x", "Bad Slug", "t"]) == 2


def test_cli_keeps_the_table_in_day_order(tmp_path, monkeypatch):
    (tmp_path / "notebooks").mkdir()
    readme = tmp_path / "README.md"
    readme.write_text("| Day | Notebook |\n|---|---|\n| 0 | [day00_x](notebooks/day00_x.ipynb) | x |\n"
                      "| 26 | [day26_y](notebooks/day26_y.ipynb) | y |\n\nAfter.\n")
    monkeypatch.setattr(new_day, "ROOT", tmp_path)
    monkeypatch.setattr(course, "NOTEBOOKS_DIR", tmp_path / "notebooks")
    assert new_day.main(["22", "sft", "SFT"]) == 0
    days = [line.split("|")[1].strip() for line in readme.read_text().splitlines()[2:5]]
    assert days == ["0", "22", "26"], f"day 22 landed out of order: {days}"
