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


def _fake_colab(monkeypatch) -> tuple[list[list[str]], list[str]]:
    """google.colab present; subprocess.run and os.chdir recorded instead of run."""
    import os

    calls: list[list[str]] = []
    chdirs: list[str] = []
    monkeypatch.setitem(sys.modules, "google", types.ModuleType("google"))
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append(list(cmd)))
    monkeypatch.setattr(os, "chdir", lambda p: chdirs.append(p))
    monkeypatch.setattr(os.path, "isdir", lambda p: False)
    monkeypatch.setattr(sys, "path", list(sys.path))
    return calls, chdirs


def _check_colab_calls(calls: list[list[str]], chdirs: list[str]) -> None:
    assert calls[0] == ["git", "clone", "--depth=1", course.repo_url(), "/content/course"]
    assert calls[1][1:] == ["-m", "pip", "install", "-q", "-c", "/content/course/constraints-colab.txt",
                            "-e", "/content/course"]
    assert chdirs == ["/content/course/notebooks"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_each_notebooks_own_colab_branch_installs_the_course(path: Path, monkeypatch):
    """The notebook's own setup cell, as written in it, up to `import helpers`, under a fake Colab."""
    cell = _setup_cell(path)
    branch = cell[: cell.index("\nimport helpers")]
    calls, chdirs = _fake_colab(monkeypatch)
    exec(compile(branch, f"{path.name}:setup", "exec"), {})
    _check_colab_calls(calls, chdirs)


def test_a_whole_setup_cell_runs_under_colab(monkeypatch, capsys):
    """Day 0's entire setup cell (install branch, import, helpers.setup) under a fake Colab."""
    calls, chdirs = _fake_colab(monkeypatch)
    ns: dict[str, object] = {}
    exec(compile(_setup_cell(NOTEBOOKS[0]), "day00:setup", "exec"), ns)
    _check_colab_calls(calls, chdirs)
    assert ns["IN_COLAB"] is True and "Day 0 | profile: offline" in capsys.readouterr().out


def test_colab_constraints_follow_constraints_txt():
    expected = course.colab_constraints(course.CONSTRAINTS.read_text(encoding="utf-8"))
    assert course.COLAB_CONSTRAINTS.read_text(encoding="utf-8") == expected, "run `make lock`"
    assert "transformers==" in expected and "\ntorch==" not in expected and "\nnumpy==" not in expected


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
