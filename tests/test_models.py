"""The model layer: resolution order, stand-ins, clear errors, and real loads offline."""
from __future__ import annotations

import pytest
import torch

import helpers
from helpers import config, models


def test_known_ids_resolve_offline_to_named_standins():
    for hub_id, (standin, _) in config.STAND_INS.items():
        info = helpers.resolve(hub_id)
        assert info.source == "stand-in", hub_id
        assert info.name == standin.name
        if not info.is_original:
            assert "STAND-IN" in info.describe() and info.note, "a stand-in must say so and how it differs"


def test_minilm_is_the_original_and_bge_is_not():
    assert helpers.resolve("sentence-transformers/all-MiniLM-L6-v2").is_original
    bge = helpers.resolve("BAAI/bge-small-en-v1.5")
    assert not bge.is_original and "384" in bge.describe()


def test_unknown_id_says_how_to_download():
    with pytest.raises(helpers.ModelNotAvailableError, match="huggingface-cli download nobody/nothing"):
        helpers.resolve("nobody/nothing")


def test_missing_standin_says_what_to_run(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "MODELS_DIR", tmp_path)
    with pytest.raises(helpers.ModelNotAvailableError, match="make models"):
        helpers.resolve("microsoft/Phi-3-mini-4k-instruct")
    with pytest.raises(helpers.ModelNotAvailableError, match="make models"):
        models.gpt2_tokenizer_dir()


def test_local_folder_wins(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "MODELS_DIR", tmp_path)
    folder = tmp_path / "microsoft" / "Phi-3-mini-4k-instruct"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    info = helpers.resolve("microsoft/Phi-3-mini-4k-instruct")
    assert info.source == "local" and info.is_original and info.location == str(folder)


def test_gpt2_tokenizer_is_exact():
    tok = helpers.load_tokenizer("gpt2").tokenizer
    assert tok("Hello world")["input_ids"] == [15496, 995]
    assert len(tok) == 50257


def test_phi3_anatomy_from_real_config():
    model = helpers.meta_model("microsoft/Phi-3-mini-4k-instruct")
    cfg = model.config
    assert (cfg.vocab_size, cfg.hidden_size, cfg.num_hidden_layers) == (32064, 3072, 32)
    n = sum(p.numel() for p in model.parameters())
    assert 3.80e9 < n < 3.85e9, n
    assert next(model.parameters()).device.type == "meta"


def test_smollm2_generates():
    model, tok, info = helpers.load_causal_lm("microsoft/Phi-3-mini-4k-instruct")
    assert not info.is_original and "SmolLM2" in info.name
    assert "Paris" in helpers.generate_chat(model, tok, "What is the capital of France?", max_new_tokens=12)


def test_sentence_model_is_real_minilm():
    model, _, info = helpers.load_sentence_model()
    emb = model.encode(["A man is eating food.", "A man is eating a piece of bread."], convert_to_tensor=True)
    sim = torch.nn.functional.cosine_similarity(emb[0], emb[1], dim=0).item()
    assert emb.shape == (2, 384)
    assert abs(sim - 0.7553) < 1e-3, f"MiniLM similarity {sim:.4f} differs from the published 0.7553"


def test_shipped_standins_load():
    clip, processor, info = helpers.load_clip()
    assert type(clip).__name__ == "CLIPModel" and type(processor).__name__ == "CLIPProcessor"
    gpt2, tok, info = helpers.load_causal_lm("gpt2")
    assert type(gpt2).__name__ == "GPT2LMHeadModel" and gpt2.config.vocab_size == 50257
