"""The safe calculator and the shared generation path (batched = one at a time)."""
from __future__ import annotations

import pytest
import torch

from helpers import agents, generation, llm, tools


def test_calculator_does_arithmetic_and_nothing_else():
    assert tools.evaluate_arithmetic("2 * (3 + 4) - 2 ** 3") == 6
    assert tools.evaluate_arithmetic("524,288 / 1024") == 512
    assert tools.format_number(512.0) == "512" and tools.format_number(1 / 3) == "0.333333"
    for bad in ("__import__('os')", "x + 1", "(1).real", "9 ** 9 ** 9", "2 +"):
        with pytest.raises(ValueError):
            tools.evaluate_arithmetic(bad)


def test_batched_generation_matches_one_at_a_time():
    model, tok, _ = llm.causal_lm(variant="fp32")  # transformers: one padded batch with a shared KV prefix
    system = "Answer in one short sentence."
    questions = ["What is the capital of France?", "Name a primary colour."]
    rows = [generation.chat_ids(tok, q, system)[0] for q in questions]
    assert generation.common_prefix(rows) > 5, "the system prompt is a shared prefix"
    batched, _ = generation.generate_batch(model, tok, rows, max_new_tokens=12)
    single = [tok.decode(generation.greedy(model, tok, r[None], 12), skip_special_tokens=True).strip() for r in rows]
    assert batched == single


@pytest.mark.parametrize("variant", ["fp32", "int8-ort"])
def test_choose_calls_equals_choose_call(variant):
    model, tok, _ = agents.load_tool_model(adapter=True, variant=variant)
    specs = [{"name": "calculator", "description": "Evaluate arithmetic.",
              "parameters": {"properties": {"expression": {"type": "string"}}}}]
    requests = ["What is 17 * 23?", "Say hello to Ada."]
    calls, _ = agents.choose_calls(model, tok, requests, specs, max_new_tokens=32)
    single = [agents.choose_call(model, tok, [{"role": "user", "content": r}], specs, max_new_tokens=32).call
              for r in requests]
    assert calls == single and calls[0] is not None and calls[0][0] == "calculator"


def test_generation_follows_the_model_device():
    model, tok, _ = llm.causal_lm()
    new = generation.greedy(model, tok, generation.chat_ids(tok, "Hi"), 2)
    assert new.device == torch.device("cpu") and new.numel() <= 2
