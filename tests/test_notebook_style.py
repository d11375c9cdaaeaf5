"""Every notebook follows the house style: header, badge, check cells, summary, exercises,
one clean run with figures and RESULT lines, and no errors or machine paths in its outputs."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
NAME = re.compile(r"^day(\d{2})[a-z]?_[a-z0-9_]+\.ipynb$")
MACHINE_PATH = re.compile(r"(?<![\w.])/(?:root|home|tmp|work|opt|mnt)/[\w.-]+")


def _text(src) -> str:  # type: ignore[no-untyped-def]
    return "".join(src) if isinstance(src, list) else (src or "")


def _outputs(cell: dict) -> list[dict]:
    return cell.get("outputs", []) if cell["cell_type"] == "code" else []


def _out_text(out: dict) -> str:
    if out.get("output_type") == "stream":
        return _text(out.get("text"))
    return _text(out.get("data", {}).get("text/plain", ""))


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks found"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_house_style(path: Path):
    m = NAME.match(path.name)
    assert m, f"{path.name}: name must be dayNN_slug.ipynb"
    assert path.stat().st_size < 3 * 1024 * 1024, "notebook over 3 MiB"
    nb = json.loads(path.read_text(encoding="utf-8"))
    cells = nb["cells"]
    head = _text(cells[0]["source"])
    assert cells[0]["cell_type"] == "markdown" and re.match(rf"#\s+Day\s+0?{int(m.group(1))}\b", head), "header"
    assert "colab.research.google.com" in head, "Colab badge missing in the header"
    assert re.search(r"Runs in about .+ on 2 CPU cores", head), "header must state the runtime on 2 CPU cores"
    code = [c for c in cells if c["cell_type"] == "code"]
    markdown = "\n".join(_text(c["source"]) for c in cells if c["cell_type"] == "markdown")
    assert "## Summary" in markdown and "## Exercises" in markdown
    checks = [c for c in code if re.search(r"^\s*assert\b", _text(c["source"]), re.M)]
    assert checks, "no check cell"
    assert all("# Check" in _text(c["source"]) for c in checks), "check cells start with a '# Check:' comment"
    counts = [c["execution_count"] for c in code if _text(c["source"]).strip()]
    assert counts == list(range(1, len(counts) + 1)), "not one clean top-to-bottom run"
    outs = [o for c in code for o in _outputs(c)]
    assert not [o for o in outs if o.get("output_type") == "error"], "error output"
    texts = "\n".join(_out_text(o) for o in outs)
    assert "Traceback (most recent call last)" not in texts
    assert not MACHINE_PATH.search(texts), f"machine path in outputs: {MACHINE_PATH.search(texts).group(0)}"
    assert any("image/png" in o.get("data", {}) for o in outs), "no figure"
    assert re.search(r"^RESULT\s+\S+\s+=", texts, re.M), "no RESULT line"
    for c in code:  # setup cells once carried their import block up to six times (an edit re-applied)
        imports = [ln.strip() for ln in _text(c["source"]).splitlines() if ln.startswith(("import ", "from "))]
        repeated = sorted({ln for ln in imports if imports.count(ln) > 1})
        assert not repeated, f"a cell repeats import lines: {repeated}"


def _asserts(source: str) -> list:  # type: ignore[type-arg]
    import ast

    lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
    tree = compile("\n".join(lines), "<cell>", "exec", flags=ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    return [node for node in ast.walk(tree) if isinstance(node, ast.Assert)]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_checks_can_fail_and_say_what_they_catch(path: Path):
    """The mechanical part of "Checks that can fail" (NOTEBOOK_STYLE.md): every assert names the
    wrong result it would catch (a message), and none compares a value with itself or tests a
    constant. The rest (a value against the expression it came from, ranges a function always
    returns) needs a reader."""
    import ast

    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    problems = []
    for i, cell in enumerate(cells):
        if cell["cell_type"] != "code" or "assert" not in _text(cell["source"]):
            continue
        for node in _asserts(_text(cell["source"])):
            where = f"cell {i} line {node.lineno}"
            if node.msg is None:
                problems.append(f"{where}: assert without a message naming the wrong result it catches")
            if isinstance(node.test, ast.Constant):
                problems.append(f"{where}: asserts a constant")
            if isinstance(node.test, ast.Compare):
                sides = [ast.dump(node.test.left)] + [ast.dump(c) for c in node.test.comparators]
                if len(set(sides)) < len(sides):
                    problems.append(f"{where}: compares a value with itself")
    assert not problems, "\n".join(problems)
