"""The agent layer (helpers.agents): schemas, the call grammar, the masking processor, the
llama-index wrapper's plumbing (with a scripted model: machinery only, never a reported number),
and one real call through the shipped adapter."""

import asyncio
import json
import sys
from typing import Literal, Optional

import pytest
import regex
import torch
from llama_index.core.base.llms.types import ChatMessage, MessageRole

from helpers import agents, config, grammar, llm
from helpers.config import DATA_DIR, REPO_ROOT
from helpers.models import ModelNotAvailableError


def search(query: str, document: Optional[Literal["tokenization", "decoding"]] = None) -> str:
    """Search the handbook; optionally in one document."""
    return f"results for {query} in {document}"


def convert(value: float, unit: Literal["KiB", "MiB"], exact: bool, times: int) -> str:
    """Convert a value."""
    return "ok"


SPECS = [agents.spec_of(search), agents.spec_of(convert)]


def test_spec_of_reads_functions_and_drops_the_signature_line():
    spec = SPECS[0]
    assert spec["name"] == "search"
    assert spec["description"] == "Search the handbook; optionally in one document."
    rendered = agents.render_tools(SPECS)
    line = json.loads(rendered.splitlines()[2])
    assert line["arguments"] == {"query": "string", "document": ["tokenization", "decoding"]}
    assert json.loads(rendered.splitlines()[-1])["name"] == agents.FINAL


def test_spec_of_rejects_what_it_cannot_read():
    with pytest.raises(ValueError, match="lacks"):
        agents.spec_of({"name": "x"})
    with pytest.raises(TypeError, match="cannot read a tool"):
        agents.spec_of(42)


@pytest.mark.parametrize("call", [
    ("search", {"query": "top-p", "document": None}),
    ("search", {"query": "", "document": "decoding"}),
    ("convert", {"value": 1.5, "unit": "MiB", "exact": True, "times": -3}),
    (agents.FINAL, {"answer": "It is 42."}),
])
def test_grammar_accepts_every_valid_call(call):
    assert regex.fullmatch(agents.call_pattern(SPECS), agents.call_text(*call))


@pytest.mark.parametrize("text", [
    '{"name": "serch", "arguments": {"query": "x", "document": null}}',         # unknown tool
    '{"name": "search", "arguments": {"query": "x"}}',                          # missing argument
    '{"name": "search", "arguments": {"query": "x", "document": "kv_cache"}}',  # not in the enum
    '{"name": "convert", "arguments": {"value": "1", "unit": "KiB", "exact": true, "times": 1}}',  # string for a number
    '{"name": "convert", "arguments": {"value": 1, "unit": "KiB", "exact": true, "times": 1.5}}',  # float for an int
    '{"name":"search","arguments":{"query":"x","document":null}}',               # not json.dumps spacing
])
def test_grammar_rejects_invalid_calls(text):
    assert not regex.fullmatch(agents.call_pattern(SPECS), text)


def test_grammar_refuses_unsupported_types_clearly():
    def bad(items: list[str]) -> str:
        """Takes a list."""
        return ""
    with pytest.raises(ValueError, match="not supported by the grammar"):
        agents.call_pattern([bad])


class FakeTok:
    """Five pieces and an end token: enough to watch the mask work."""
    pieces = ["<eos>", "{", "}", "a", "b", "ab"]
    all_special_ids = [0]
    eos_token_id = 0

    def __len__(self):
        return len(self.pieces)

    def convert_ids_to_tokens(self, ids):
        return [self.pieces[i] for i in ids]

    def convert_tokens_to_string(self, tokens):
        return "".join(tokens)

    def encode(self, text, add_special_tokens=False):
        return [self.pieces.index(text)]

    def decode(self, ids):
        return "".join(self.pieces[i] for i in ids if i not in self.all_special_ids)


def test_processor_masks_invalid_tokens_and_ends_a_complete_match():
    tok = FakeTok()
    proc = grammar.GrammarLogitsProcessor(tok, r"\{a+b\}", prompt_len=1, top_n=2)
    scores = torch.tensor([[0.0, 1.0, 5.0, 2.0, 3.0, 0.5]])  # the model wants "}" first, then "b"
    out = proc(torch.tensor([[9, 1]]), scores.clone())  # generated so far: "{"
    allowed = torch.isfinite(out[0]).nonzero().flatten().tolist()
    assert allowed == [3, 5], "after '{' only 'a' and 'ab' continue the grammar"
    assert proc.interventions == 1
    out = proc(torch.tensor([[9, 1, 3, 4, 2]]), scores.clone())  # "{ab}" is complete
    assert torch.isfinite(out[0]).nonzero().flatten().tolist() == [0]
    with pytest.raises(RuntimeError, match="no token continues"):
        grammar.GrammarLogitsProcessor(tok, r"\{c\}", prompt_len=0)(torch.tensor([[1]]), scores.clone())


def test_parse_and_run_calls_turn_errors_into_observations():
    assert agents.parse_call('{"name": "f", "arguments": {"x": 1}}') == ("f", {"x": 1})
    assert agents.parse_call('{"name": "f", "arguments": {"x": 1}') is None
    assert agents.parse_call('["f"]') is None
    fns = {"div": lambda a, b: a / b}
    assert agents.run_call(("div", {"a": 6, "b": 3}), fns) == "2.0"
    assert agents.run_call(("div", {"a": 1, "b": 0}), fns).startswith("Error: ZeroDivisionError")
    assert "no tool named 'mul'" in agents.run_call(("mul", {}), fns)
    assert agents.run_call(None, fns).startswith("Error:")


def test_missing_adapter_says_how_to_get_it(monkeypatch, tmp_path):
    monkeypatch.setitem(config.ADAPTERS, agents.ADAPTER_ID, (tmp_path / "nothing", "scripts/train_tool_lora.py"))
    llm.causal_lm.cache_clear()
    try:
        with pytest.raises(ModelNotAvailableError, match="train_tool_lora.py"):
            agents.load_tool_model(adapter=True)
    finally:
        llm.causal_lm.cache_clear()


class ScriptedModel(torch.nn.Module):
    """Returns scripted replies instead of generating (tests the plumbing, never a result)."""

    device = torch.device("cpu")

    def __init__(self, tok, replies):
        super().__init__()
        self.tok, self.replies, self.prompts = tok, list(replies), []

    def generate(self, ids, **kwargs):
        self.prompts.append(self.tok.decode(ids[0]))
        reply = self.tok(self.replies.pop(0) + "<|im_end|>", add_special_tokens=False, return_tensors="pt").input_ids
        return torch.cat([ids, reply], dim=1)


def test_function_agent_runs_tools_through_the_wrapper():
    from llama_index.core.agent.workflow import FunctionAgent
    from llama_index.core.tools import FunctionTool

    _, tok, _ = agents.load_tool_model(adapter=False)
    script = [agents.call_text("search", {"query": "top-p", "document": "decoding"}),
              agents.call_text(agents.FINAL, {"answer": "Found it."})]
    scripted = agents.ToolCallingLLM(ScriptedModel(tok, script), tok, stop=[])
    agent = FunctionAgent(tools=[FunctionTool.from_defaults(fn=search)], llm=scripted)

    async def ask() -> object:
        return await agent.run("What is top-p?")
    answer = asyncio.run(ask())
    assert str(answer) == "Found it."
    second_prompt = scripted._model.prompts[1]
    assert "<|im_start|>tool\nresults for top-p in decoding" in second_prompt, "the observation goes back as a tool turn"
    assert script[0] in second_prompt, "the earlier call is shown in the course format"
    assert [s.call[0] for s in scripted.steps] == ["search", agents.FINAL]


def test_adapter_writes_calls_the_plain_model_cannot():
    """What only the adapter does: a valid call WITHOUT the grammar (the plain stand-in never
    writes one; Day 10 measures 0 of 22), with the right tool and its argument copied."""
    model, tok, info = agents.load_tool_model(adapter=True)
    assert info.adapter == agents.ADAPTER_ID and "adapter" in info.describe()
    specs = [agents.spec_of(search), {"name": "calculator", "description": "Evaluate arithmetic.",
                                      "parameters": {"properties": {"expression": {"type": "string"}}}}]
    ask = [{"role": "user", "content": "What is 36 * 12?"}]
    tuned = agents.choose_call(model, tok, ask, specs, constrained=False)
    assert tuned.call is not None and tuned.call[0] == "calculator", tuned.text
    assert "36" in tuned.call[1]["expression"] and "12" in tuned.call[1]["expression"], tuned.call
    plain, _, plain_info = agents.load_tool_model(adapter=False)
    assert plain is not model and plain_info.adapter is None, "the plain model must stay unchanged"
    assert agents.choose_call(plain, tok, ask, specs, constrained=False).call is None, "the plain model wrote a call"


def test_evaluation_requests_are_not_training_requests():
    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    try:
        from train_tool_lora import Generator
    finally:
        sys.path.pop(0)
    runs = json.loads((agents.ADAPTER_DIR / "training_log.json").read_text())["runs"]
    seeds = {run["seed"] for run in runs}
    assert sum(run["steps"] * run["batch"] for run in runs) <= 4000, "check as many traces as were trained on"
    generated = {" ".join(r.lower().split()) for seed in seeds for r in Generator(seed=seed).requests(4000)}
    files = sorted((DATA_DIR / "agents").glob("*.jsonl"))
    requests = [json.loads(line).get("request", "") for f in files for line in f.read_text().splitlines() if line.strip()]
    overlap = [r for r in requests if " ".join(r.lower().split()) in generated]
    assert not overlap, f"evaluation requests that the adapter was trained on: {overlap[:3]}"


def test_a_call_cut_off_by_the_budget_is_retried_then_reported():
    _, tok, _ = agents.load_tool_model(adapter=False)
    cut = '{"name": "search", "arguments": {"query": "a very long query that goes on and on'
    whole = agents.call_text("search", {"query": "top-p", "document": "decoding"})
    retried = agents.ToolCallingLLM(ScriptedModel(tok, [cut, whole]), tok, stop=[], max_new_tokens=8)
    from llama_index.core.tools import FunctionTool

    tools = [FunctionTool.from_defaults(fn=search)]
    reply = retried.chat([ChatMessage(role=MessageRole.USER, content="What is top-p?")], tools=tools)
    assert reply.message.additional_kwargs["tool_calls"][0]["name"] == "search"
    assert retried.steps[-1].retried and not retried.steps[-1].cut_off
    failed = agents.ToolCallingLLM(ScriptedModel(tok, [cut, cut]), tok, stop=[], max_new_tokens=8)
    reply = failed.chat([ChatMessage(role=MessageRole.USER, content="What is top-p?")], tools=tools)
    assert reply.message.content.startswith("Error: the model's tool call was cut off"), reply.message.content
    assert failed.steps[-1].cut_off
