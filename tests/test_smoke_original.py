"""The notebooks' "original model" branches run offline: fake originals (the stand-ins' files in
models/<hub id>) make the layer report originals, and the lighter notebooks run top to bottom.
`make smoke-original` does the same for every notebook."""
from __future__ import annotations

import importlib.util
import sys

import pytest

from helpers import config

# Light notebooks whose original branches differ most from the stand-in ones (model names,
# meta-device anatomy of the loaded model, CLIP on photos). The rest: `make smoke-original`.
IN_SUITE = ("day00_course_setup.ipynb", "day05_embeddings_static_to_multimodal.ipynb")


def _script():
    spec = importlib.util.spec_from_file_location("smoke_original", config.REPO_ROOT / "scripts" / "smoke_original.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fake_originals_resolve_as_originals(tmp_path, monkeypatch):
    smoke = _script()
    smoke.fake_originals(tmp_path)
    monkeypatch.setattr(config, "MODELS_DIR", tmp_path)
    from helpers.models import resolve

    for hub_id in config.STAND_INS:
        info = resolve(hub_id)
        assert info.is_original and info.source == "local", hub_id


@pytest.mark.parametrize("name", IN_SUITE)
def test_original_branches_run(name):
    sys.path.insert(0, str(config.REPO_ROOT / "scripts"))
    try:
        assert _script().main([str(config.REPO_ROOT / "notebooks" / name)]) == 0, f"{name} failed with fake originals"
    finally:
        sys.path.remove(str(config.REPO_ROOT / "scripts"))
