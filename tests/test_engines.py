"""The fast engine (onnxruntime-genai, int4) behind the course's generate calls: same answers
where it matters, the call grammar works on it, clear errors where it does not apply."""
from __future__ import annotations

import pytest
import regex

from helpers import agents, engines, generation, llm
from helpers.models import ModelNotAvailableError


@pytest.fixture(scope="module")
def ort():
    return llm.causal_lm(variant="int4-ort")


def test_engine_answers_like_the_reference(ort):
    model, tok, info = ort
    assert isinstance(model, engines.OrtCausalLM) and not info.is_original
    assert "Paris" in generation.generate_chat(model, tok, "What is the capital of France?", max_new_tokens=12)
    assert set(model.last_seconds) == {"prefill", "decode", "reused_tokens"}


def test_grammar_runs_on_the_engine(ort):
    model, tok, _ = ort
    specs = [{"name": "convert", "description": "Convert a size.",
              "parameters": {"properties": {"value": {"type": "number"}, "unit": {"enum": ["KiB", "MiB"]}}}}]
    step = agents.choose_call(model, tok, [{"role": "user", "content": "Convert 2048 to MiB."}], specs)
    assert regex.fullmatch(agents.call_pattern(specs), step.text), step.text
    assert step.call is not None


def test_stop_strings_and_the_llama_index_llm(ort):
    local = llm.local_llm(variant="int4-ort", max_new_tokens=40, stop=("\n",))
    text = local.complete("List three primary colours, one per line.").text
    assert "\n" not in text and local.stats[-1]["new_tokens"] <= 40


def test_engine_refuses_what_it_cannot_do(ort, tmp_path):
    model, tok, _ = ort
    ids = generation.chat_ids(tok, "Hi")
    with pytest.raises(ValueError, match="greedily"):
        model.generate(ids, do_sample=True)
    with pytest.raises(ValueError, match="SmolLM2 stand-in only"):
        llm.causal_lm("gpt2", variant="int4-ort")
    with pytest.raises(ModelNotAvailableError, match="make models"):
        engines.OrtCausalLM(tmp_path)


def test_prefix_reuse_reads_only_the_new_tokens(ort):
    """Reuse skips the shared prefix; on this prompt the greedy text is the same as a fresh run's
    (not guaranteed in general: the suffix is computed in another batch shape, see engines)."""
    model, tok, _ = ort
    system = "You answer questions about the course handbook in one short sentence. " * 4
    rows = [generation.chat_ids(tok, q, system) for q in ("What is a token?", "What is a KV cache?")]
    model.reuse_prefix = False
    fresh = [generation.greedy(model, tok, r, 16).tolist() for r in rows]
    model.reuse_prefix = True
    generation.greedy(model, tok, rows[0], 16)
    again = generation.greedy(model, tok, rows[1], 16).tolist()
    assert model.last_seconds["reused_tokens"] > 40, "the shared system prompt should not be read again"
    assert again == fresh[1], "reuse changed the greedy text on this prompt"
    assert generation.greedy(model, tok, rows[1], 16).tolist() == fresh[1], "the same prompt twice"


def test_default_engine_by_model_and_role(monkeypatch):
    assert llm.default_variant() == "int4-ort" and llm.default_variant(tools=True) == "int8-ort"
    monkeypatch.setattr(llm.config, "LLM_ENGINE", "fp32")
    assert llm.default_variant() == "fp32" and llm.default_variant(tools=True) == "fp32"
    monkeypatch.setattr(llm.config, "LLM_ENGINE", "fast")
    with pytest.raises(ValueError, match="LLMC_ENGINE"):
        llm.default_variant()
