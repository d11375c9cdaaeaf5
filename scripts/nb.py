#!/usr/bin/env python3
"""Author and run course notebooks.

    python scripts/nb.py build SRC.py notebooks/dayNN_slug.ipynb   # py-percent source -> notebook
    python scripts/nb.py run notebooks/dayNN_slug.ipynb [...]       # execute in place, offline
    python scripts/nb.py export notebooks/dayNN_slug.ipynb OUT.py   # notebook -> py-percent

A py-percent source separates cells with `# %%` (code) and `# %% [markdown]` lines; markdown
cells are written as `# ` comment lines. `run` executes top to bottom in the same offline,
network-blocked environment as the test suite (so committed outputs are those CI sees),
with the kernel's working directory in notebooks/, and reports the wall time and any error.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def parse_percent(text: str) -> list[dict]:
    cells: list[dict] = []
    kind, lines = None, []

    def flush() -> None:
        if kind is None:
            return
        body = lines[:]
        while body and not body[-1].strip():
            body.pop()
        while body and not body[0].strip():
            body.pop(0)
        if kind == "markdown":
            body = [l[2:] if l.startswith("# ") else ("" if l.strip() == "#" else l) for l in body]
            cells.append({"cell_type": "markdown", "metadata": {}, "source": _src(body)})
        else:
            cells.append({"cell_type": "code", "metadata": {}, "source": _src(body),
                          "outputs": [], "execution_count": None})

    for line in text.splitlines():
        if line.startswith("# %%"):
            flush()
            kind, lines = ("markdown" if "[markdown]" in line else "code"), []
        elif kind is not None:
            lines.append(line)
    flush()
    return cells


def _src(lines: list[str]) -> list[str]:
    return [l + "\n" for l in lines[:-1]] + ([lines[-1]] if lines else [])


def build(src: Path, dst: Path) -> None:
    nb = {
        "cells": parse_percent(src.read_text(encoding="utf-8")),
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    for i, cell in enumerate(nb["cells"]):
        cell["id"] = f"c{i:03d}"
    dst.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"built {dst} ({len(nb['cells'])} cells)")


def export(nb_path: Path, out: Path) -> None:
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    parts = []
    for cell in nb["cells"]:
        src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if cell["cell_type"] == "markdown":
            parts.append("# %% [markdown]\n" + "\n".join(("# " + l) if l else "#" for l in src.splitlines()))
        else:
            parts.append("# %%\n" + src)
    out.write_text("\n\n".join(parts) + "\n", encoding="utf-8")


def run(nb_path: Path, timeout: int = 600) -> int:
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    from helpers.network import offline_env

    log = Path(tempfile.mkdtemp(prefix="llmc-net-")) / "attempts.log"
    os.environ.update(offline_env(str(log)))
    nb = nbformat.read(nb_path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(nb_path.parent)}})
    start = time.perf_counter()
    rc = 0
    try:
        client.execute()
    except CellExecutionError as exc:
        print(f"FAILED {nb_path.name}:\n{str(exc)[:3000]}")
        rc = 1
    elapsed = time.perf_counter() - start
    nbformat.write(nb, nb_path)
    if log.is_file() and log.read_text().strip():
        print("NETWORK ATTEMPTS:\n" + log.read_text())
        rc = 1
    print(f"{'ran' if rc == 0 else 'ERROR in'} {nb_path.name} in {elapsed:.0f} s")
    return rc


def main(argv: list[str]) -> int:
    if len(argv) >= 3 and argv[0] == "build":
        build(Path(argv[1]), Path(argv[2]))
        return 0
    if len(argv) == 3 and argv[0] == "export":
        export(Path(argv[1]), Path(argv[2]))
        return 0
    if len(argv) >= 2 and argv[0] == "run":
        return max(run(Path(p)) for p in argv[1:])
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
