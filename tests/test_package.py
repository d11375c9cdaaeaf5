"""The package's own index: every helpers module is listed in `helpers.__doc__` (the map a reader starts from)."""
from __future__ import annotations

import re
from pathlib import Path

import helpers


def test_every_module_is_in_the_index():
    modules = {p.stem for p in Path(helpers.__file__).parent.glob("*.py") if p.stem != "__init__"}
    listed = set(re.findall(r"^    (\w+)\s{2,}", helpers.__doc__, re.M))
    assert modules - listed == set(), f"helpers modules missing from helpers/__init__.py's docstring: {sorted(modules - listed)}"
    assert listed - modules == set(), f"the docstring lists modules that do not exist: {sorted(listed - modules)}"
