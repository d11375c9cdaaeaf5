#!/usr/bin/env python3
"""Scaffold a new day in the house style: the notebook and its README row.

    make new-day N=16 SLUG=hybrid_search TITLE="Hybrid search, measured properly"
    python scripts/new_day.py 16 hybrid_search "Hybrid search, measured properly"

Writes notebooks/dayNN_SLUG.ipynb (header with the Colab badge and the runtime budget, the
setup cell with the Colab branch, one section with a from-scratch/library/check skeleton,
results, summary and exercises) and appends a row to the README's day table. The `.ipynb` is
the source of truth: edit it in JupyterLab, then run it top to bottom with
`python scripts/nb.py run notebooks/dayNN_SLUG.ipynb` and commit the outputs of that run.
Refuses to overwrite an existing notebook.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from helpers import config, course  # noqa: E402


def _md(text: str) -> dict:
    return {"cell_type": "markdown", "metadata": {}, "source": text.strip("\n").splitlines(keepends=True)}


def _code(text: str) -> dict:
    return {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
            "source": text.strip("\n").splitlines(keepends=True)}


def notebook(day: int, slug: str, title: str) -> dict:
    """The scaffold notebook of a day (cells to fill in, marked TODO)."""
    name = f"day{day:02d}_{slug}.ipynb"
    minutes = max(1, round(config.NOTEBOOK_BUDGET_S / 60))
    setup = "".join(course.colab_install_lines()) + f"""
import helpers

run = helpers.setup(day={day}, models=[])  # TODO: the hub ids this day loads

import matplotlib.pyplot as plt
import numpy as np
"""
    cells = [
        _md(f"""# Day {day}: {title}

{course.badge_markdown(name)}

You will:
- TODO: one bullet per idea, three to five
- TODO
- TODO

Runs in about {minutes} minutes on 2 CPU cores; no GPU or API key needed. (TODO: the measured figure.)
"""),
        _md("## Setup"),
        _code(setup),
        _md("""## 1. TODO: the first idea

Why before how, in a few sentences. Build it from scratch first, then the library call, then check they agree."""),
        _code("# TODO: from scratch\n"),
        _code("# TODO: the library's version\n"),
        _code("""# Check: TODO (name the wrong result this would catch)
raise NotImplementedError("TODO: assert the lesson's claim on this run's numbers")  # an unfinished day fails the suite
"""),
        _md("## Results"),
        _code("helpers.report()  # TODO: the day's key numbers, measured on the test split\n"),
        _md("""## Summary

- TODO"""),
        _md("""## Exercises

1. TODO (hint: ...)
2. TODO (hint: ...)"""),
    ]
    return {"cells": cells, "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                                         "name": "python3"},
                                          "language_info": {"name": "python"}},
            "nbformat": 4, "nbformat_minor": 5}


def readme_row(day: int, slug: str, title: str) -> str:
    """The README day-table row of a new day."""
    name = f"day{day:02d}_{slug}.ipynb"
    return (f"| {day} | [day{day:02d}_{slug}](notebooks/{name}) | {title} | {course.badge_markdown(name)} |"
            " TODO | TODO |")


def main(argv: list[str]) -> int:
    if len(argv) != 3 or not argv[0].isdigit() or not re.fullmatch(r"[a-z0-9_]+", argv[1]):
        print(__doc__)
        print("error: give N (a number), SLUG (lowercase letters, digits, _) and TITLE", file=sys.stderr)
        return 2
    day, slug, title = int(argv[0]), argv[1], argv[2]
    path = course.NOTEBOOKS_DIR / f"day{day:02d}_{slug}.ipynb"
    if path.exists() or list(course.NOTEBOOKS_DIR.glob(f"day{day:02d}_*.ipynb")):
        print(f"error: a notebook for day {day} exists already; not overwriting", file=sys.stderr)
        return 1
    path.write_text(json.dumps(notebook(day, slug, title), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    readme = ROOT / "README.md"
    lines = readme.read_text(encoding="utf-8").splitlines()
    rows = [i for i, line in enumerate(lines) if re.match(r"\| \d+ \| \[day\d\d", line)]
    later = [i for i in rows if int(lines[i].split("|")[1]) > day]  # keep the table in day order
    lines.insert(later[0] if later else rows[-1] + 1, readme_row(day, slug, title))
    readme.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {path.relative_to(ROOT)} and a README row; fill in the TODOs, then "
          f"`python scripts/nb.py run {path.relative_to(ROOT)}`")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
