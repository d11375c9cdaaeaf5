"""The course's public URL (written once, in pyproject.toml) and what derives from it:
Colab badges and the Colab install cell. `python -m helpers.course` re-syncs the notebooks.

Colab installs the course with `constraints-colab.txt`: the exact versions the suite was tested
with (`constraints.txt`), minus the packages Colab preinstalls and builds against its GPU and
Python (`COLAB_KEEPS`): replacing those would pull a CPU torch or break compiled packages until
a runtime restart. `make lock` writes both files."""
from __future__ import annotations

import json
import re
import sys
import tomllib
from pathlib import Path

from .config import REPO_ROOT

NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
BADGE_IMG = "https://colab.research.google.com/assets/colab-badge.svg"
_BADGE_RE = re.compile(r"\[!\[Open In Colab\]\([^)]*\)\]\([^)]*\)")
_REPO_LINE_RE = re.compile(r'REPO_URL = "[^"]*"')
CONSTRAINTS = REPO_ROOT / "constraints.txt"
COLAB_CONSTRAINTS = REPO_ROOT / "constraints-colab.txt"
# Colab's own builds stay: torch and its CUDA libraries, and the compiled numeric stack.
COLAB_KEEPS = ("torch", "torchvision", "torchaudio", "triton", "nvidia-", "numpy", "scipy", "pandas", "pillow",
               "jupyter", "ipykernel", "ipython", "notebook", "tornado", "pyzmq")


def repo_url() -> str:
    """The repository URL from `[project.urls] Repository` in pyproject.toml."""
    data = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return data["project"]["urls"]["Repository"].rstrip("/")


def colab_url(notebook: str, branch: str = "main") -> str:
    """Colab's address for a notebook of this repository on GitHub."""
    path = repo_url().removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{path}/blob/{branch}/notebooks/{Path(notebook).name}"


def badge_markdown(notebook: str) -> str:
    """The Colab badge that opens `notebook` (a file name in notebooks/)."""
    return f"[![Open In Colab]({BADGE_IMG})]({colab_url(notebook)})"


def colab_install_lines() -> list[str]:
    """The Colab branch of every setup cell: clone the course once, install it, work inside it."""
    return [
        "import os, subprocess, sys\n",
        "IN_COLAB = \"google.colab\" in sys.modules\n",
        "if IN_COLAB:  # Colab only: fetch the course and install it once per runtime\n",
        f"    REPO_URL = \"{repo_url()}\"\n",
        "    if not os.path.isdir(\"/content/course\"):\n",
        "        subprocess.run([\"git\", \"clone\", \"--depth=1\", REPO_URL, \"/content/course\"], check=True)\n",
        "        subprocess.run([sys.executable, \"-m\", \"pip\", \"install\", \"-q\", \"-c\", \"/content/course/constraints-colab.txt\",\n",
        "                        \"-e\", \"/content/course\"], check=True)\n",
        "    os.chdir(\"/content/course/notebooks\")\n",
        "    sys.path.insert(0, \"/content/course\")\n",
    ]


def colab_constraints(text: str) -> str:
    """`constraints.txt` text without the pins Colab must keep (`COLAB_KEEPS`)."""
    keep = []
    for line in text.splitlines():
        name = re.split(r"[=<>!~ ;\[]", line.strip(), maxsplit=1)[0].lower().replace("_", "-")
        if line.strip() and not line.startswith("#") and not name.startswith(COLAB_KEEPS):
            keep.append(line.strip())
    header = "# Written by `make lock` from constraints.txt: the tested pins minus what Colab keeps (helpers/course.py)."
    return "\n".join([header, *keep]) + "\n"


def _src(cell: dict) -> str:
    s = cell.get("source", "")
    return "".join(s) if isinstance(s, list) else s


def sync_notebook(path: Path) -> bool:
    """Rewrite the badge and REPO_URL of one notebook from pyproject; True if it changed."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    changed = False
    for cell in nb["cells"]:
        src = _src(cell)
        new = _BADGE_RE.sub(badge_markdown(path.name).replace("\\", "\\\\"), src)
        new = _REPO_LINE_RE.sub(f'REPO_URL = "{repo_url()}"', new)
        if new != src:
            cell["source"] = new.splitlines(keepends=True)
            changed = True
    if changed:
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return changed


def main() -> int:
    if sys.argv[1:] == ["--colab-constraints"]:
        COLAB_CONSTRAINTS.write_text(colab_constraints(CONSTRAINTS.read_text(encoding="utf-8")), encoding="utf-8")
        print(f"wrote {COLAB_CONSTRAINTS.name}")
        return 0
    changed = [p.name for p in sorted(NOTEBOOKS_DIR.glob("day*.ipynb")) if sync_notebook(p)]
    print("synced:", ", ".join(changed) if changed else "nothing to change")
    return 0


if __name__ == "__main__":
    sys.exit(main())
