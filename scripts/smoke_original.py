#!/usr/bin/env python3
"""Smoke-test the notebooks' "original model" branches offline.

    python scripts/smoke_original.py [notebooks/dayNN_x.ipynb ...]   # default: every notebook

Builds a throwaway models folder in which every hub id the course uses has a `models/<hub id>`
folder filled with its stand-in's files (links, nothing copied), points the model layer at it
(`LLMC_MODELS_DIR`), and runs the notebooks top to bottom without storing their outputs. The
layer then reports each model as an original, so every `if info.is_original:` branch runs.
`LLMC_SMOKE_ORIGINAL=1` makes `helpers.expect` report, not raise, an original's quality claim:
the "originals" here are the small stand-ins, so the run proves that the branches execute,
not what the real models score. Exit status 1 if any notebook fails.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from helpers import config  # noqa: E402
from helpers.models import gpt2_tokenizer_dir, resolve  # noqa: E402
from helpers.notebook import SMOKE_ENV  # noqa: E402


def fake_originals(folder: Path) -> Path:
    """`folder` laid out like models/ with a fake original for every id in config.STAND_INS."""
    (folder / "_offline").symlink_to(config.OFFLINE_DIR, target_is_directory=True)
    for hub_id in config.STAND_INS:
        source = Path(resolve(hub_id).location)
        target = folder / hub_id
        target.mkdir(parents=True)
        files = list(source.iterdir())
        if hub_id in ("gpt2", "openai-community/gpt2"):  # the weights and the exact tokenizer side by side
            files += [f for f in gpt2_tokenizer_dir().iterdir() if not (source / f.name).exists()]
        for f in files:
            (target / f.name).symlink_to(f)
    return folder


def main(argv: list[str]) -> int:
    import nb

    paths = [Path(p) for p in argv] or sorted((ROOT / "notebooks").glob("day*.ipynb"))
    saved = {k: os.environ.get(k) for k in ("LLMC_MODELS_DIR", SMOKE_ENV)}
    with tempfile.TemporaryDirectory(prefix="llmc-originals-") as tmp:
        fake_originals(Path(tmp))
        os.environ.update({"LLMC_MODELS_DIR": tmp, SMOKE_ENV: "1"})  # the kernels inherit these
        try:
            results = {p.name: nb.run(p, write=False) for p in paths}
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
    failed = [name for name, rc in results.items() if rc]
    print(f"smoke (fake originals): {len(results) - len(failed)} passed, {len(failed)} failed", *failed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
