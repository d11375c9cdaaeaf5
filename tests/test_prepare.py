"""helpers.prepare: an engine with a merged adapter is tied to that adapter's weights."""
from __future__ import annotations

from pathlib import Path

import pytest

from helpers import config, prepare
from helpers.engines import ort_folder


def test_adapter_digest_follows_the_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(config.ADAPTERS, "course/test-lora", (tmp_path, "scripts/train_x.py"))
    (tmp_path / "adapter_config.json").write_text("{}")
    (tmp_path / "adapter_model.safetensors").write_bytes(b"weights v1")
    first = prepare.adapter_digest("course/test-lora")
    assert len(first) == 16 and first == prepare.adapter_digest("course/test-lora")
    (tmp_path / "adapter_model.safetensors").write_bytes(b"weights v2")  # retrained
    assert prepare.adapter_digest("course/test-lora") != first


def test_adapter_digest_missing_weights_say_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(config.ADAPTERS, "course/test-lora", (tmp_path, "scripts/train_x.py"))
    (tmp_path / "adapter_config.json").write_text("{}")  # the config without the weights
    with pytest.raises(prepare.PrepareError, match="git checkout models/llm-challenge"):
        prepare.adapter_digest("course/test-lora")


@pytest.mark.parametrize("adapter", sorted(config.ADAPTERS))
def test_built_adapter_engines_match_the_shipped_adapter(adapter: str):
    """An int8 engine built from an older adapter would serve stale answers; `make models` rebuilds it."""
    note = ort_folder(adapter, "int8") / "SOURCE.txt"
    if not note.is_file():
        pytest.fail(f"the {adapter} engine is not built: run `make models`")
    assert f"adapter sha256 {prepare.adapter_digest(adapter)}" in note.read_text(), (
        f"{note.parent.name} was built from other weights of {adapter}: run `make models`")
