"""Constrained decoding with a SentencePiece tokenizer (the kind Phi-3 and Llama use): token
texts must keep their leading spaces, or a grammar that needs `": "` can never be followed."""
from __future__ import annotations

import json

import pytest
import regex
import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, LogitsProcessorList, PreTrainedTokenizerFast

from helpers import agents, grammar

SPECS = [{"name": "pick", "description": "Pick a colour.",
          "parameters": {"type": "object", "properties": {"color": {"enum": ["red", "blue"]}, "count": {"type": "integer"}}}}]
CORPUS = [agents.call_text("pick", {"color": c, "count": n}) for c in ("red", "blue") for n in range(12)] + [
    agents.call_text(agents.FINAL, {"answer": "the red one"}), "Pick a colour: red or blue, and how many?"]


@pytest.fixture(scope="module")
def sp_tok() -> PreTrainedTokenizerFast:
    """A tiny BPE tokenizer with Llama's SentencePiece conventions, trained here offline: spaces
    become '▁' glued to the next piece, and the decoder strips the text's first space."""
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=False))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.pre_tokenizer = pre_tokenizers.Split("▁", behavior="merged_with_next")
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    alphabet = sorted(set("".join(CORPUS).replace(" ", "▁")) | set("▁0123456789"))
    tok.train_from_iterator(CORPUS * 4, trainers.BpeTrainer(vocab_size=160, special_tokens=["<unk>", "<s>", "</s>"],
                                                            initial_alphabet=alphabet, show_progress=False))
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>")


def test_pieces_keep_sentencepiece_spaces(sp_tok):
    pieces = grammar.token_pieces(sp_tok)
    spaced = [i for i, t in enumerate(sp_tok.convert_ids_to_tokens(list(range(len(sp_tok))))) if t.startswith("▁") and len(t) > 1]
    assert spaced, "the tokenizer should have pieces that start with a space"
    for i in spaced:
        assert pieces[i].startswith(" "), (sp_tok.convert_ids_to_tokens(i), pieces[i])
        assert sp_tok.decode([i]) == pieces[i][1:], "decoding alone drops the space (why token_pieces must not)"
    text = agents.call_text("pick", {"color": "red", "count": 3})
    ids = sp_tok.encode(text, add_special_tokens=False)
    assert "".join(pieces[i] for i in ids).strip() == text


def test_constrained_decoding_writes_a_valid_call_with_sentencepiece(sp_tok):
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(sp_tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                      bos_token_id=sp_tok.bos_token_id, eos_token_id=sp_tok.eos_token_id)
    model = LlamaForCausalLM(cfg).eval()  # random weights: only the grammar can make the output valid
    prompt = torch.tensor([[sp_tok.bos_token_id] + sp_tok.encode("Pick a colour", add_special_tokens=False)])
    pattern = agents.call_pattern(SPECS)
    proc = grammar.GrammarLogitsProcessor(sp_tok, pattern, prompt.shape[1])
    with torch.no_grad():
        out = model.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=60, do_sample=False,
                             logits_processor=LogitsProcessorList([proc]), pad_token_id=sp_tok.eos_token_id,
                             eos_token_id=sp_tok.eos_token_id)
    new = out[0, prompt.shape[1]:].tolist()
    text = "".join(grammar.token_pieces(sp_tok)[i] or "" for i in new).strip()
    assert regex.fullmatch(pattern, text), text
    assert agents.parse_call(text) is not None and json.loads(text)["name"] in ("pick", agents.FINAL)
    assert proc.interventions > 0, "a random model should need the mask"


def test_value_patterns_follow_the_schema():
    assert regex.fullmatch(grammar.value_pattern({"type": "string", "maxLength": 3}), '"abc"')
    assert not regex.fullmatch(grammar.value_pattern({"type": "string", "maxLength": 3}), '"abcd"')
    assert regex.fullmatch(grammar.object_pattern({"properties": {"n": {"type": "integer"}}}), '{"n": -12}')
    with pytest.raises(ValueError, match="not supported"):
        grammar.value_pattern({"type": "array"})
