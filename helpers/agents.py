"""Tool calling with a local model (Days 10-15).

One call format for the whole course: the model answers every turn with one JSON object

    {"name": "<tool name>", "arguments": {...}}

and says `final_answer` when it is done. This module holds what the agent days share:

- `render_tools` / `messages_ids`: the system prompt that lists the tools, and the chat template;
- `call_pattern`: the grammar of valid calls for a set of tools (`helpers.grammar` turns schemas
  into regular expressions and masks tokens that would leave them);
- `choose_call`: one constrained step (prompt -> parsed call), the unit of every agent loop;
  `choose_calls`: many single-turn requests at once, the tool list prefilled once;
- `load_tool_model`: the local model, with the course's tool-use LoRA adapter merged in when the
  model is SmolLM2 (the adapter is trained by `scripts/train_tool_lora.py` and shipped);
- `tool_llm`: the same as a llama-index `FunctionCallingLLM`, so `FunctionAgent` can drive it.

    from helpers import agents
    model, tok, info = agents.load_tool_model()
    step = agents.choose_call(model, tok, [{"role": "user", "content": "What is 17 * 23?"}], specs)
    step.call  # ("calculator", {"expression": "17 * 23"})
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import regex
from llama_index.core.base.llms.types import ChatMessage, ChatResponse, MessageRole
from llama_index.core.bridge.pydantic import Field
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.llm import ToolSelection

from . import grammar
from .config import TOOL_ADAPTER_BASE, TOOL_ADAPTER_DIR, TOOL_ADAPTER_ID
from .generation import generate_batch, greedy, template_ids
from .llm import LLM_ID, LocalLLM, causal_lm, default_variant, llm_kwargs
from .models import Resolved, resolve

FINAL = "final_answer"
FINAL_SPEC = {"name": FINAL, "description": "Give the final answer to the user and stop.",
              "parameters": {"type": "object", "properties": {"answer": {"type": "string"}}}}
ADAPTER_ID = TOOL_ADAPTER_ID  # the course's tool-use LoRA adapter (shipped)
ADAPTER_DIR = TOOL_ADAPTER_DIR
ADAPTER_BASE = TOOL_ADAPTER_BASE  # the weights it was trained on
SYSTEM = ("You are an assistant that acts through tools. Reply to every message with exactly one JSON object "
          '{"name": <tool name>, "arguments": {...}}. Use a tool when it helps; call final_answer when you can '
          "answer the user.\nTools:")


# --------------------------------------------------------------------------- tool schemas
def spec_of(tool: Any) -> dict:
    """A tool as {"name", "description", "parameters"}: accepts such a dict, a llama-index tool
    (`FunctionTool`, `QueryEngineTool`, ...) or a plain typed Python function."""
    if isinstance(tool, dict):
        missing = {"name", "description", "parameters"} - set(tool)
        if missing:
            raise ValueError(f"tool spec {tool.get('name', tool)!r} lacks {sorted(missing)}")
        return tool
    if hasattr(tool, "metadata"):  # llama-index BaseTool
        meta = tool.metadata
        return {"name": meta.name, "description": _one_line(meta.description), "parameters": meta.get_parameters_dict()}
    if callable(tool):
        from llama_index.core.tools import FunctionTool

        return spec_of(FunctionTool.from_defaults(fn=tool))
    raise TypeError(f"cannot read a tool from {type(tool).__name__}: pass a dict, a llama-index tool or a function")


def _one_line(description: str) -> str:
    """FunctionTool descriptions start with the signature line; keep the docstring, on one line."""
    lines = [ln.strip() for ln in description.strip().splitlines() if ln.strip()]
    if len(lines) > 1 and regex.match(r"^\w+\(.*\)( -> .*)?$", lines[0]):
        lines = lines[1:]
    return " ".join(lines)


def _type_hint(schema: dict, root: dict) -> Any:
    """How a parameter is shown to the model: its type name, or the list of allowed values."""
    schema = grammar.resolve_ref(schema, root)
    if "enum" in schema:
        return list(schema["enum"])
    if "anyOf" in schema:
        options = [_type_hint(s, root) for s in schema["anyOf"] if s.get("type") != "null"]
        return options[0] if len(options) == 1 else options
    return schema.get("type", "string")


def render_tools(specs: Iterable[Any], final: bool = True, system: str = SYSTEM) -> str:
    """The system prompt: instructions, then one JSON line per tool (name, description, arguments)."""
    specs = [spec_of(s) for s in specs] + ([FINAL_SPEC] if final else [])
    lines = [system]
    for s in specs:
        params = s["parameters"] or {}
        args = {k: _type_hint(v, params) for k, v in params.get("properties", {}).items()}
        lines.append(json.dumps({"name": s["name"], "description": s["description"], "arguments": args}))
    return "\n".join(lines)


def call_pattern(specs: Iterable[Any], final: bool = True) -> str:
    """The grammar of valid calls: `{"name": "<tool>", "arguments": {<every parameter, in order>}}`,
    one alternative per tool (plus `final_answer`), written the way `json.dumps` writes it."""
    return grammar.call_pattern([spec_of(s) for s in specs] + ([FINAL_SPEC] if final else []))


# --------------------------------------------------------------------------- one step
@dataclass
class Step:
    """One generation: the text, the parsed call (None when it is not a valid call), and its cost."""

    text: str
    call: tuple[str, dict] | None
    prompt_tokens: int
    new_tokens: int
    seconds: float
    interventions: int = 0
    constrained: bool = True
    cut_off: bool = False  # the token budget ended inside the call (even after one retry with twice the budget)
    retried: bool = False


def parse_call(text: str) -> tuple[str, dict] | None:
    """`(name, arguments)` from a call's JSON text, or None when it is not a well-formed call."""
    try:
        obj = json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return None
    if not isinstance(obj, dict) or not isinstance(obj.get("name"), str) or not isinstance(obj.get("arguments", {}), dict):
        return None
    return obj["name"], obj.get("arguments", {})


def messages_ids(tok: Any, messages: Sequence[dict], specs: Iterable[Any] | None = None, final: bool = True) -> Any:
    """Token ids (1, T) of a conversation in the chat template, with the tool list as the system
    message when `specs` is given. Messages are {"role", "content"} dicts; roles user, assistant, tool."""
    chat = list(messages)
    if specs is not None:
        chat = [{"role": "system", "content": render_tools(specs, final=final)}] + [m for m in chat if m["role"] != "system"]
    return template_ids(tok, chat)


def generate(model: Any, tok: Any, ids: Any, pattern: str | None = None, max_new_tokens: int = 96,
             do_sample: bool = False, temperature: float = 1.0, top_k: int | None = None,
             top_n: int = 64) -> Step:
    """Generate from prompt ids, constrained to `pattern` when given (greedy unless `do_sample`)."""
    from transformers import LogitsProcessorList

    processor = grammar.GrammarLogitsProcessor(tok, pattern, ids.shape[1], top_n=top_n) if pattern else None
    sampling = {"do_sample": True, "temperature": temperature, "top_k": top_k or 0} if do_sample else {}
    start = time.perf_counter()
    new = greedy(model, tok, ids, max_new_tokens, eos_token_id=tok.eos_token_id,
                 logits_processor=LogitsProcessorList([processor]) if processor else None, **sampling)
    text = tok.decode(new, skip_special_tokens=True).strip()
    return Step(text=text, call=parse_call(text), prompt_tokens=int(ids.shape[1]), new_tokens=int(new.shape[0]),
                seconds=time.perf_counter() - start, interventions=processor.interventions if processor else 0,
                constrained=processor is not None)


def choose_call(model: Any, tok: Any, messages: Sequence[dict], specs: Sequence[Any], constrained: bool = True,
                final: bool = True, max_new_tokens: int = 96, **sampling: Any) -> Step:
    """One agent step: the tools in the system prompt, the conversation, and the model's next call
    (constrained to valid calls unless `constrained=False`)."""
    specs = [spec_of(s) for s in specs]
    ids = messages_ids(tok, messages, specs, final=final)
    pattern = call_pattern(specs, final=final) if constrained else None
    step = generate(model, tok, ids, pattern, max_new_tokens=max_new_tokens, **sampling)
    if constrained and step.call is None and step.new_tokens >= max_new_tokens:  # cut off inside the call:
        first = step  # a grammar-constrained call can only be unparsable when the budget ran out; retry once
        step = generate(model, tok, ids, pattern, max_new_tokens=2 * max_new_tokens, **sampling)
        step.seconds += first.seconds
        step.retried, step.cut_off = True, step.call is None
    return step


def choose_calls(model: Any, tok: Any, requests: Sequence[str], specs: Sequence[Any], constrained: bool = True,
                 final: bool = True, max_new_tokens: int = 48) -> tuple[list[tuple[str, dict] | None], list[str]]:
    """`choose_call` for many single-turn requests at once: the shared tool list is prefilled once
    and the requests are decoded as one batch. Returns the parsed calls and the raw texts.
    Unconstrained rows stop as soon as their reply cannot be a JSON call."""
    specs = [spec_of(s) for s in specs]
    rows = [messages_ids(tok, [{"role": "user", "content": r}], specs, final=final)[0] for r in requests]
    pattern = call_pattern(specs, final=final)
    texts, _ = generate_batch(model, tok, rows, max_new_tokens=max_new_tokens,
                              make_processor=(lambda width: grammar.GrammarLogitsProcessor(tok, pattern, width))
                              if constrained else None, stop_prefix=None if constrained else "{")
    return [parse_call(t) for t in texts], texts


def call_text(name: str, arguments: dict) -> str:
    """A call written exactly as the grammar and the adapter expect it."""
    return json.dumps({"name": name, "arguments": arguments})


def run_call(call: tuple[str, dict] | None, functions: dict[str, Callable[..., Any]]) -> str:
    """Execute a parsed call and return the observation text; errors become observations
    ("Error: ...") so an agent loop can recover instead of crashing."""
    if call is None:
        return "Error: the reply was not a valid tool call."
    name, args = call
    if name not in functions:
        return f"Error: there is no tool named {name!r}. Tools: {', '.join(sorted(functions))}."
    try:
        return str(functions[name](**args))
    except Exception as err:  # the tool's own failure is information for the model
        return f"Error: {type(err).__name__}: {err}"


# --------------------------------------------------------------------------- the model
def adapter_fits(hub_id: str) -> bool:
    """Whether `hub_id` resolves to the weights the tool adapter was trained on (SmolLM2 offline)."""
    return resolve(hub_id).location == resolve(ADAPTER_BASE).location


def load_tool_model(hub_id: str | None = None, adapter: bool = True,
                    variant: str | None = None) -> tuple[Any, Any, Resolved]:
    """(model, tokenizer, Resolved) for the agent days, on the tool engine
    (`llm.default_variant(tools=True)`; offline: int8 on onnxruntime-genai) unless `variant` says
    otherwise (`"fp32"`: transformers, for batched or sampled generation).

    `hub_id` defaults to the course LLM (Phi-3 Mini; offline the SmolLM2-135M stand-in). With
    `adapter=True` and a SmolLM2 model, the course's tool-use LoRA adapter is merged into a copy of
    the weights (the plain model stays shared and unchanged); `info.adapter` says which was used.
    Any other model (Phi-3 online) is used as it is, since the adapter only fits SmolLM2.
    """
    hub_id = hub_id or LLM_ID
    variant = variant or default_variant(hub_id, tools=True)
    if adapter and adapter_fits(hub_id):
        return causal_lm(hub_id, variant, adapter=ADAPTER_ID)
    loaded = causal_lm(hub_id, variant)
    if adapter:
        print(f"Tool adapter: not applied ({loaded.info.name} is not {ADAPTER_BASE}, the model it was trained for).")
    return loaded


# --------------------------------------------------------------------------- llama-index
def _as_dict(message: Any) -> dict:
    """A llama-index ChatMessage as a template message; tool calls written in the course format."""
    role = message.role.value if hasattr(message.role, "value") else str(message.role)
    calls = message.additional_kwargs.get("tool_calls") or []
    if role == "assistant" and calls:
        c = calls[0]
        return {"role": role, "content": call_text(c["name"], c["arguments"])}
    if role == "assistant":
        return {"role": role, "content": call_text(FINAL, {"answer": message.content or ""})}
    return {"role": "tool" if role == "tool" else role, "content": message.content or ""}


class ToolCallingLLM(FunctionCallingLLM, LocalLLM):
    """The local model as a llama-index function-calling LLM: with tools it answers with one
    (constrained) call from `choose_call`; without tools it chats like `LocalLLM`. Build it with
    `tool_llm()`."""

    constrained: bool = Field(default=True, description="mask tokens to the grammar of valid calls")
    steps: list = Field(default_factory=list, description="every tool-call step (helpers.agents.Step)")

    @classmethod
    def class_name(cls) -> str:
        return "ToolCallingLLM"

    @property
    def metadata(self) -> Any:
        return super().metadata.model_copy(update={"is_function_calling_model": True})

    def _prepare_chat_with_tools(self, tools: Sequence[Any], user_msg: Any = None, chat_history: Any = None,
                                 verbose: bool = False, allow_parallel_tool_calls: bool = False,
                                 tool_required: bool = False, **kwargs: Any) -> dict:
        messages = list(chat_history or [])
        if user_msg is not None:
            messages.append(user_msg if isinstance(user_msg, ChatMessage)
                            else ChatMessage(role=MessageRole.USER, content=user_msg))
        return {"messages": messages, "tools": list(tools)}

    def chat(self, messages: Sequence[Any], tools: Sequence[Any] | None = None, **kwargs: Any) -> Any:
        if not tools:
            return super().chat(messages)
        step = choose_call(self._model, self._tok, [_as_dict(m) for m in messages], tools,
                           constrained=self.constrained, max_new_tokens=self.max_new_tokens)
        self.steps.append(step)
        self._stats.append({"prompt_tokens": step.prompt_tokens, "new_tokens": step.new_tokens,
                            "seconds": step.seconds})
        if step.cut_off:  # never hand a half-written call on as the answer
            return ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=(
                f"Error: the model's tool call was cut off after {step.new_tokens} tokens and could not be "
                f"read: {step.text[:60]}...")))
        if step.call is None:  # unconstrained and unreadable: the text is all we have
            return ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=step.text))
        name, args = step.call
        if name == FINAL:
            return ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=str(args.get("answer", ""))))
        call = {"id": f"call_{len(self.steps)}", "name": name, "arguments": args}
        return ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=step.text,
                                                additional_kwargs={"tool_calls": [call]}))

    def stream_chat(self, messages: Sequence[Any], tools: Sequence[Any] | None = None, **kwargs: Any) -> Any:
        if not tools:
            return super().stream_chat(messages)
        response = self.chat(messages, tools=tools)

        def gen() -> Any:
            yield ChatResponse(message=response.message, delta=response.message.content)
        return gen()

    async def achat(self, messages: Sequence[Any], **kwargs: Any) -> Any:
        return self.chat(messages, **kwargs)

    async def astream_chat(self, messages: Sequence[Any], **kwargs: Any) -> Any:
        response = self.chat(messages, **kwargs)

        async def gen() -> Any:
            yield ChatResponse(message=response.message, delta=response.message.content)
        return gen()

    def get_tool_calls_from_response(self, response: Any, error_on_no_tool_call: bool = True,
                                     **kwargs: Any) -> list:
        calls = response.message.additional_kwargs.get("tool_calls") or []
        if not calls and error_on_no_tool_call:
            raise ValueError(f"the model answered without a tool call: {response.message.content!r}")
        return [ToolSelection(tool_id=c["id"], tool_name=c["name"], tool_kwargs=c["arguments"]) for c in calls]


def tool_llm(hub_id: str | None = None, adapter: bool = True, constrained: bool = True,
             max_new_tokens: int = 96, variant: str | None = None) -> ToolCallingLLM:
    """The tool model as a llama-index `FunctionCallingLLM` (for `FunctionAgent`, `AgentWorkflow`,
    `llm.predict_and_call`). Every step is kept in `.steps`."""
    hub_id = hub_id or LLM_ID
    variant = variant or default_variant(hub_id, tools=True)  # resolved once, passed on and recorded
    loaded = load_tool_model(hub_id, adapter, variant)
    return ToolCallingLLM(loaded.model, loaded.tokenizer, constrained=constrained, variant=variant,
                          **llm_kwargs(loaded, max_new_tokens, 2048, stop=()))
