"""Checks for the shipped text data: data/handbook and data/golden.

Stdlib only and fast: it loads data/golden/validate.py by path and asserts
that it reports no problems, then checks the Markdown shape of every
handbook document directly.
"""
import importlib.util
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
VALIDATOR_PATH = REPO_ROOT / "data" / "golden" / "validate.py"
HANDBOOK_DIR = REPO_ROOT / "data" / "handbook"


def _load_validator():
    spec = importlib.util.spec_from_file_location("golden_validate", VALIDATOR_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_validator_reports_no_problems():
    problems = _load_validator().validate()
    assert problems == [], "\n".join(problems)


def test_handbook_documents_have_title_and_sections():
    docs = sorted(p for p in HANDBOOK_DIR.glob("*.md") if p.name != "LICENSE.md")
    assert len(docs) >= 15
    for path in docs:
        lines = path.read_text(encoding="utf-8").splitlines()
        assert lines and lines[0].startswith("# "), f"{path.name}: missing '# ' title"
        sections = [line for line in lines if line.startswith("## ")]
        assert len(sections) >= 4, f"{path.name}: only {len(sections)} '## ' sections"


def test_license_is_cc0():
    text = (HANDBOOK_DIR / "LICENSE.md").read_text(encoding="utf-8")
    assert "CC0" in text
    assert "LLM Challenge: 30 Days authors" in text
