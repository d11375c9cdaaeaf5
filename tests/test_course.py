"""The repository URL is written once (pyproject); badges and the Colab install derive from it."""
from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import pytest

from helpers import course

NOTEBOOKS = sorted(course.NOTEBOOKS_DIR.glob("day*.ipynb"))


def _cells(path: Path) -> list[str]:
    return ["".join(c["source"]) for c in json.loads(path.read_text(encoding="utf-8"))["cells"]]


def _setup_cell(path: Path) -> str:
    code = [s for s in _cells(path) if "IN_COLAB" in s]
    assert code, f"{path.name}: no setup cell with the Colab branch"
    return code[0]


def test_repo_url_is_a_github_url():
    assert course.repo_url().startswith("https://github.com/")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_badge_and_install_cell_follow_pyproject(path: Path):
    head = _cells(path)[0]
    assert course.badge_markdown(path.name) in head, "badge out of step: run `make sync`"
    setup = _setup_cell(path)
    expected = "".join(course.colab_install_lines())
    assert expected in setup, "Colab install lines out of step with helpers.course: run `make sync`"


@pytest.mark.parametrize("path", NOTEBOOKS[:1] + NOTEBOOKS[-1:], ids=lambda p: p.name)
def test_colab_branch_installs_the_course(path: Path, monkeypatch):
    """Run the setup cell's Colab branch against a fake google.colab module."""
    calls: list[list[str]] = []
    monkeypatch.setitem(sys.modules, "google", types.ModuleType("google"))
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append(list(cmd)))
    import os

    chdirs: list[str] = []
    monkeypatch.setattr(os, "chdir", lambda p: chdirs.append(p))
    monkeypatch.setattr(os.path, "isdir", lambda p: False)
    branch = "".join(course.colab_install_lines())
    exec(compile(branch, f"{path.name}:setup", "exec"), {})
    assert calls[0] == ["git", "clone", "--depth=1", course.repo_url(), "/content/course"]
    assert calls[1][1:] == ["-m", "pip", "install", "-q", "-e", "/content/course"]
    assert chdirs == ["/content/course/notebooks"]


def test_not_in_colab_runs_nothing(monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    calls: list[object] = []
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: calls.append(a))
    ns: dict[str, object] = {}
    exec("".join(course.colab_install_lines()), ns)
    assert ns["IN_COLAB"] is False and calls == []


def test_readme_badges_follow_pyproject():
    readme = (course.REPO_ROOT / "README.md").read_text(encoding="utf-8")
    for path in NOTEBOOKS:
        if f"notebooks/{path.name})" in readme:
            assert course.badge_markdown(path.name) in readme, f"README badge of {path.name} out of step"
