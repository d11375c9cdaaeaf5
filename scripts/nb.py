#!/usr/bin/env python3
"""Run and export course notebooks (the `.ipynb` files are the source of truth).

    python scripts/nb.py run notebooks/dayNN_slug.ipynb [...]       # execute in place, offline
    python scripts/nb.py check notebooks/dayNN_slug.ipynb [...]     # execute, keep the file as it is
    python scripts/nb.py export notebooks/dayNN_slug.ipynb OUT.py   # notebook -> py-percent (for reading, diffs)

`run` executes top to bottom in the same offline,
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


def run(nb_path: Path, timeout: int = 600, write: bool = True) -> int:
    """Execute a notebook offline with the network blocked; store its outputs unless `write=False`.
    Returns 0, or 1 when a cell failed or anything tried to reach the network."""
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
    if write:
        nbformat.write(nb, nb_path)
    if log.is_file() and log.read_text().strip():
        print("NETWORK ATTEMPTS:\n" + log.read_text())
        rc = 1
    import resource

    kernel = resource.getrusage(resource.RUSAGE_CHILDREN)  # the kernel, once it has exited
    peak, cpu = kernel.ru_maxrss / 1024, kernel.ru_utime + kernel.ru_stime
    print(f"{'ran' if rc == 0 else 'ERROR in'} {nb_path.name} in {elapsed:.0f} s "
          f"(kernel CPU {cpu:.0f} s, kernel peak RSS {peak:.0f} MiB)")
    return rc


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "export":
        export(Path(argv[1]), Path(argv[2]))
        return 0
    if len(argv) >= 2 and argv[0] in ("run", "check"):
        return max(run(Path(p), write=argv[0] == "run") for p in argv[1:])
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
