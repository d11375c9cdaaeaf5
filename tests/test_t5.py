"""The encoder-decoder stand-in: google-t5/t5-small resolves offline to tiny-t5-numbers, named as such,
and it really does its one task on numbers it never saw in training."""
from __future__ import annotations

import json

import pytest

import helpers
from helpers import config, models, prepare

T5_IDS = ("google-t5/t5-small", "t5-small")
# The checkpoint's model card measures 1,000 test numbers per direction; this test reads the first
# 200 of them (a fixed sample). The card measured 1.000 both ways; 0.95 leaves room for a retrained checkpoint.
N_SAMPLE = 200
MIN_EXACT = {"digits": 0.95, "words": 0.95}


def test_t5_ids_resolve_to_the_named_tiny_t5_standin():
    for hub_id in T5_IDS:
        info = helpers.resolve(hub_id)
        assert info.source == "stand-in" and not info.is_original, info
        assert info.name == config.TINY_T5.name and "tiny-t5-numbers" in info.location
        text = info.describe()
        assert text.startswith(f"{hub_id} is not available offline; using STAND-IN tiny-t5-numbers"), text
        assert "60.5M" in text and "number words" in text, "the note must say how the stand-in differs"


def test_load_seq2seq_gives_a_t5_and_its_own_tokenizer():
    model, tok, info = helpers.load_seq2seq("google-t5/t5-small")
    assert type(model).__name__ == "T5ForConditionalGeneration" and model.config.is_encoder_decoder
    assert not model.training and not info.is_original
    ids = tok("digits: three hundred and twelve")["input_ids"]
    assert ids[-1] == tok.eos_token_id == 1 and tok.pad_token_id == model.config.decoder_start_token_id == 0
    assert tok.unk_token_id not in ids, tok.convert_ids_to_tokens(ids)


def _heldout_accuracy(model, tok, rows):
    enc = tok([src for src, _ in rows], return_tensors="pt", padding=True).to(model.device)
    out = tok.batch_decode(model.generate(**enc, max_new_tokens=16, do_sample=False), skip_special_tokens=True)
    return sum(o == want for o, (_, want) in zip(out, rows)) / len(rows), out


def test_standin_translates_heldout_numbers():
    model, tok, info = helpers.load_seq2seq("t5-small")
    heldout = json.loads((config.SHIPPED_CHECKPOINTS_DIR / config.TINY_T5.path / "heldout.json").read_text())
    test = heldout["test"][:N_SAMPLE]
    for direction, rows in (("digits", [(f"digits: {w}", str(n)) for n, w in test]),
                            ("words", [(f"words: {n}", w) for n, w in test])):
        acc, out = _heldout_accuracy(model, tok, rows)
        assert acc >= MIN_EXACT[direction], (
            f"{direction}: exact match {acc:.3f} on {N_SAMPLE} held-out numbers is below {MIN_EXACT[direction]}"
            f" (first outputs {out[:3]})")


def test_missing_checkpoint_gives_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "SHIPPED_CHECKPOINTS_DIR", tmp_path)
    with pytest.raises(helpers.ModelNotAvailableError, match=r"tiny-t5-numbers.*\n.*git checkout.*train_tiny_t5\.py"):
        helpers.load_seq2seq("google-t5/t5-small")
    with pytest.raises(prepare.PrepareError, match="train_tiny_t5.py|missing"):
        prepare.check_shipped()


def test_a_decoder_is_not_a_seq2seq_model():
    with pytest.raises(ValueError, match="not an encoder-decoder model .*GPT2LMHeadModel"):
        models.load_seq2seq("gpt2")
