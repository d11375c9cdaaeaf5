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
    with pytest.raises(helpers.ModelNotAvailableError, match="hf download nobody/nothing"):
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


def test_models_go_to_the_available_device():
    model, tok, _ = helpers.load_causal_lm("HuggingFaceTB/SmolLM2-135M-Instruct")
    assert model.device.type == models.device()
    assert model.dtype == models.default_dtype(models.device())
    assert models.default_dtype("cpu") == torch.float32 and models.default_dtype("mps") == torch.float16


def test_online_path_uses_the_hub_id(monkeypatch, tmp_path):
    """Online (probe answered), an id with no local folder and no packaged original loads from the Hub."""
    monkeypatch.setattr(config, "MODELS_DIR", tmp_path)
    monkeypatch.setattr(models, "hub_reachable", lambda: True)
    info = helpers.resolve("microsoft/Phi-3-mini-4k-instruct")
    assert (info.source, info.location, info.is_original) == ("hub", "microsoft/Phi-3-mini-4k-instruct", True)
    assert helpers.resolve("nobody/nothing").source == "hub"


def test_unknown_id_online_gives_a_clear_error(monkeypatch):
    monkeypatch.setattr(models, "hub_reachable", lambda: True)
    with pytest.raises(helpers.ModelNotAvailableError, match=r"Check the id .*hf download nobody/nothing"):
        helpers.load_causal_lm("nobody/nothing")  # HF_HUB_OFFLINE=1 in the suite: the library fails at once


def test_encoder_id_is_not_a_causal_lm():
    with pytest.raises(ValueError, match="not a causal language model .*BertModel"):
        helpers.load_causal_lm("sentence-transformers/all-MiniLM-L6-v2")


def test_fake_original_folder_is_reported_as_original(monkeypatch, tmp_path):
    """The 'original' branch offline: the stand-in's files put in models/<hub id> load as an original."""
    smol = helpers.resolve("HuggingFaceTB/SmolLM2-135M-Instruct").location
    folder = tmp_path / "microsoft" / "Phi-3-mini-4k-instruct"
    folder.parent.mkdir(parents=True)
    folder.symlink_to(smol, target_is_directory=True)
    monkeypatch.setattr(config, "MODELS_DIR", tmp_path)
    model, tok, info = helpers.load_causal_lm("microsoft/Phi-3-mini-4k-instruct")
    assert info.is_original and info.source == "local" and "STAND-IN" not in info.describe()
    assert "Paris" in helpers.generate_chat(model, tok, "What is the capital of France?", max_new_tokens=12)
